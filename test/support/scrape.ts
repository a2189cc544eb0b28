import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/**
 * A Prometheus text exposition parsed by an independent parser, flattened to
 * `name{label=value,…}` → value (histograms and summaries also give `…:count`).
 */
export function parseScrape(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const family of parsePrometheusTextFormat(text)) {
    for (const sample of family.metrics) {
      const labels = Object.entries(sample.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const key = labels ? `${family.name}{${labels}}` : family.name;
      if (sample.value !== undefined) values.set(key, Number(sample.value));
      if (sample.count !== undefined) values.set(`${key}:count`, Number(sample.count));
    }
  }
  return values;
}
