import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';

interface IPanel {
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string }>;
}
interface IVariable {
  name: string;
  type: string;
  query?: unknown;
}
interface IDashboard {
  __inputs?: Array<{ name: string; type: string; pluginId: string }>;
  templating: { list: IVariable[] };
  panels: IPanel[];
}

const dashboardPath = new URL('../../docs/grafana-dashboard.json', import.meta.url);
const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as IDashboard;
const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));

async function familyNames(srv: ITestServer): Promise<Set<string>> {
  const metrics = srv.helper.getMetrics();
  if (!metrics) throw new Error('metrics are off');
  return new Set(parsePrometheusTextFormat(await metrics.metrics()).map((family) => family.name));
}

let redis: RedisServer;
let withDefaults: ITestServer;
let plain: ITestServer;
beforeAll(async () => {
  redis = await RedisServer.start();
  withDefaults = await startServer({
    redis: { host: '127.0.0.1', port: redis.port },
    metrics: { defaultMetrics: true },
  });
  plain = await startServer({ metrics: true });
});
afterAll(async () => {
  await withDefaults.stop();
  await plain.stop();
  await redis.stop();
});

describe('Grafana dashboard', () => {
  test('asks for its data source on import and has datasource, prefix, job and instance variables', () => {
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    ]);
    const variables = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect([...variables.keys()].sort()).toEqual(['datasource', 'instance', 'job', 'prefix']);
    expect(variables.get('datasource')?.type).toBe('datasource');
    expect(JSON.stringify(variables.get('job')?.query)).toContain('$' + '{prefix}connections');
    expect(JSON.stringify(variables.get('instance')?.query)).toContain('job=~\\"$job\\"');
    for (const panel of dashboard.panels)
      expect(`${panel.title}: ${panel.datasource?.uid}`).toBe(`${panel.title}: \${datasource}`);
  });

  test('every query uses the prefix variable, filters by job and instance, and ranges over $__rate_interval', () => {
    expect(exprs.length).toBeGreaterThan(20);
    for (const expr of exprs) {
      expect(expr).not.toContain('roomcast_');
      const selectors = expr.match(/\$\{prefix\}[a-z0-9_]+(\{[^}]*\})?/g) ?? [];
      expect(selectors.length).toBeGreaterThan(0);
      for (const selector of selectors) expect(selector).toEndWith('{job=~"$job", instance=~"$instance"}');
      for (const range of expr.match(/\[[^\]]*\]/g) ?? []) expect(range).toBe('[$__rate_interval]');
    }
  });

  test('every metric it queries is one a real helper exposes (with Redis and defaultMetrics on)', async () => {
    const exposed = await familyNames(withDefaults);
    const queried = new Set(
      exprs.flatMap((expr) =>
        [...expr.matchAll(/\$\{prefix\}([a-z0-9_]+)/g)].map((match) =>
          `roomcast_${match[1]}`.replace(/_bucket$/, ''),
        ),
      ),
    );
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe('metrics.defaultMetrics', () => {
  test("off by default; on, prom-client's process metrics carry the same prefix", async () => {
    const without = await familyNames(plain);
    expect([...without].filter((name) => name.includes('process_') || name.includes('nodejs_'))).toEqual([]);
    const with_ = await familyNames(withDefaults);
    for (const name of ['roomcast_process_cpu_seconds_total', 'roomcast_process_resident_memory_bytes']) {
      expect(with_.has(name)).toBe(true);
    }
    expect(with_.has('roomcast_connections')).toBe(true);
  });
});
