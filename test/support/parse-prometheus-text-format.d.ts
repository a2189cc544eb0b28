declare module 'parse-prometheus-text-format' {
  export interface IParsedSample {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  export interface IParsedFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: IParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): IParsedFamily[];
}
