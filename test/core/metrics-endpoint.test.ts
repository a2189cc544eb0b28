// The component's /metrics endpoint, scraped over real HTTP from a real application
// and parsed with an independent Prometheus text parser.
import { describe, expect, test } from 'bun:test';
import { Registry } from 'prom-client';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { parseScrape } from '../support/scrape.ts';
import { eventually } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { appsPerTest, startApp, type TestApplication, withAuth } from './app-fixture.ts';

const started = appsPerTest();

const httpUrl = (app: TestApplication, path: string) => `http://127.0.0.1:${app.getAddress().port}${path}`;

async function scrape(app: TestApplication, path = '/metrics'): Promise<Map<string, number>> {
  const response = await fetch(httpUrl(app, path));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return parseScrape(await response.text());
}

describe('component /metrics', () => {
  test('off by default: /metrics falls through to Hono (404) and the helper has no registry', async () => {
    const app = await started({});
    expect((await fetch(httpUrl(app, '/metrics'))).status).toBe(404);
    expect(app.helper.getMetrics()).toBeUndefined();
  });

  test('metrics: true serves the scrape at /metrics; the values move as clients connect, authenticate and leave', async () => {
    const app = await started({ metrics: true });
    const before = await scrape(app);
    expect(before.get('roomcast_connections')).toBe(0);

    const clients = await Promise.all([1, 2, 3].map(() => TestClient.authenticated(app.wsUrl())));
    const during = await scrape(app);
    expect(during.get('roomcast_connections_authenticated')).toBe(3);
    expect(during.get('roomcast_connections_opened_total')).toBe(3);
    expect(during.get('roomcast_auth_total{outcome=accepted}')).toBe(3);

    for (const client of clients) client.close();
    await eventually(() => app.helper.getStats().clients === 0, 2_000, 'clients gone');
    const after = await scrape(app);
    expect(after.get('roomcast_connections')).toBe(0);
    const closed = [...after].filter(([name]) => name.startsWith('roomcast_connections_closed_total{'));
    expect(closed.reduce((sum, [, n]) => sum + n, 0)).toBe(3);

    // HEAD answers without a body; other methods are not the scrape.
    const head = await fetch(httpUrl(app, '/metrics'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(httpUrl(app, '/metrics'), { method: 'POST' })).status).toBe(404);
  });

  test('a moved path, an application registry with a prefix, and metricsPath: false (mounted by the application)', async () => {
    const registry = new Registry();
    const moved = await started({ metrics: { registry, prefix: 'chat_' }, metricsPath: '/-/prom' });
    expect((await fetch(httpUrl(moved, '/metrics'))).status).toBe(404);
    const values = await scrape(moved, '/-/prom');
    expect(values.get('chat_connections')).toBe(0);
    expect([...values.keys()].some((name) => name.startsWith('roomcast_'))).toBe(false);
    expect(moved.helper.getMetrics()?.registry).toBe(registry);

    const unmounted = await started({ metrics: true, metricsPath: false });
    expect((await fetch(httpUrl(unmounted, '/metrics'))).status).toBe(404);
    expect(unmounted.helper.getMetrics()).toBeDefined();
  });

  test('a bad metricsPath fails start() with a message naming the option', async () => {
    for (const metricsPath of ['metrics', '/ws', '/readyz', 3]) {
      await expect(
        startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { metrics: true, metricsPath } })),
      ).rejects.toThrow('[WebSocketComponent] metricsPath must be false or a path');
    }
  });
});
