import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import parsePrometheusTextFormat, { type IParsedFamily } from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * The helper's Prometheus metrics against a real server and a real Redis: scrape
 * the text exposition, parse it with an independent parser, and watch the
 * values move as traffic flows.
 */

let redis: RedisServer;
let server: ITestServer;
let other: ITestServer;

beforeAll(async () => {
  redis = await RedisServer.start();
  const common = {
    redis: { host: '127.0.0.1', port: redis.port },
    validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
  };
  server = await startServer({ ...common, metrics: true, limits: { messagesPerSecond: 5, messageBurst: 5 } });
  other = await startServer(common);
});
afterAll(async () => {
  await server.stop();
  await other.stop();
  await redis.stop();
});

async function scrape(srv: ITestServer = server): Promise<Map<string, IParsedFamily>> {
  const metrics = srv.helper.getMetrics();
  if (!metrics) throw new Error('metrics are off');
  expect(metrics.contentType).toContain('text/plain');
  const families = parsePrometheusTextFormat(await metrics.metrics());
  return new Map(families.map((family) => [family.name, family]));
}

function value(
  families: Map<string, IParsedFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric ${name}`);
  const sample = family.metrics.find((m) =>
    Object.entries(labels).every(([key, wanted]) => m.labels?.[key] === wanted),
  );
  return Number(sample?.value ?? 0);
}

describe('Prometheus metrics', () => {
  test('off by default: no registry, nothing to scrape', () => {
    expect(other.helper.getMetrics()).toBeUndefined();
  });

  test('every family has the roomcast_ prefix, a help text and a type', async () => {
    const families = await scrape();
    expect(families.size).toBeGreaterThan(15);
    for (const [name, family] of families) {
      expect(name.startsWith('roomcast_')).toBe(true);
      expect(family.help.length).toBeGreaterThan(10);
      if (family.type === 'COUNTER') expect(name.endsWith('_total')).toBe(true);
    }
    expect(value(families, 'roomcast_redis_connected')).toBe(1);
  });

  test('connections, authentication, rooms and closes move with traffic', async () => {
    const before = await scrape();
    const alice = await TestClient.authenticated(server.url, { token: 'ok', user: 'alice' });
    const refused = await TestClient.connect(server.url);
    refused.send({ event: 'authenticate', data: { token: 'nope' } });
    await refused.closedWithin();
    alice.send({ event: 'join', data: { rooms: ['metrics-room'] } });
    await alice.next('join');

    const during = await scrape();
    expect(
      value(during, 'roomcast_connections_opened_total') - value(before, 'roomcast_connections_opened_total'),
    ).toBe(2);
    expect(value(during, 'roomcast_connections_authenticated')).toBe(
      value(before, 'roomcast_connections_authenticated') + 1,
    );
    expect(value(during, 'roomcast_auth_total', { outcome: 'accepted' })).toBe(
      value(before, 'roomcast_auth_total', { outcome: 'accepted' }) + 1,
    );
    expect(value(during, 'roomcast_auth_total', { outcome: 'refused' })).toBe(
      value(before, 'roomcast_auth_total', { outcome: 'refused' }) + 1,
    );
    expect(value(during, 'roomcast_connections_closed_total', { code: '4003' })).toBe(
      value(before, 'roomcast_connections_closed_total', { code: '4003' }) + 1,
    );
    const histogram = during.get('roomcast_auth_duration_seconds');
    expect(histogram?.type).toBe('HISTOGRAM');
    expect(Number(histogram?.metrics[0]?.count)).toBeGreaterThanOrEqual(2);
    expect(value(during, 'roomcast_rooms')).toBeGreaterThan(value(before, 'roomcast_rooms'));
    expect(value(during, 'roomcast_inbound_bytes_total')).toBeGreaterThan(
      value(before, 'roomcast_inbound_bytes_total'),
    );

    alice.close();
    await eventually(() => server.helper.getStats().clients === 0, 2_000, 'alice gone');
    const after = await scrape();
    expect(value(after, 'roomcast_connections_authenticated')).toBe(
      value(before, 'roomcast_connections_authenticated'),
    );
    expect(value(after, 'roomcast_connections')).toBe(0);
  });

  test('deliveries count once per message for native fan-out, per socket for direct writes', async () => {
    const members = await Promise.all([1, 2, 3].map(() => TestClient.authenticated(server.url)));
    for (const m of members) {
      m.send({ event: 'join', data: { rooms: ['fan'] } });
      await m.next('join');
    }
    const before = await scrape();
    server.helper.send({ destination: 'fan', payload: { topic: 'news', data: 1 } });
    server.helper.sendToClient({ clientId: members[0]!.id, event: 'dm', data: 2 });
    for (const m of members) await m.next('news');
    await members[0]!.next('dm');
    const after = await scrape();
    expect(
      value(after, 'roomcast_deliveries_total', { path: 'native' }) -
        value(before, 'roomcast_deliveries_total', { path: 'native' }),
    ).toBe(1);
    expect(
      value(after, 'roomcast_deliveries_total', { path: 'socket' }) -
        value(before, 'roomcast_deliveries_total', { path: 'socket' }),
    ).toBe(1);
    expect(value(after, 'roomcast_bus_published_total') - value(before, 'roomcast_bus_published_total')).toBe(
      1,
    );

    // A message from the other instance is received once, however many members it reaches here.
    other.helper.send({ destination: 'fan', payload: { topic: 'news', data: 2 } });
    for (const m of members) await m.next('news', (d) => d === 2);
    const remote = await scrape();
    expect(value(remote, 'roomcast_bus_received_total') - value(after, 'roomcast_bus_received_total')).toBe(
      1,
    );
    for (const m of members) m.close();
  });

  test('refusals by the limits are counted by error code', async () => {
    const before = await scrape();
    const client = await TestClient.authenticated(server.url);
    for (let i = 0; i < 20; i++) client.send({ event: 'chat', data: i });
    await client.next('error', (d) => d.code === 'RATE_LIMITED');
    await Bun.sleep(50);
    const after = await scrape();
    const refused =
      value(after, 'roomcast_inbound_refused_total', { code: 'RATE_LIMITED' }) -
      value(before, 'roomcast_inbound_refused_total', { code: 'RATE_LIMITED' });
    expect(refused).toBeGreaterThanOrEqual(14); // 20 sent, 5 of burst minus authenticate, a token or so refilled
    client.close();
  });

  test('Redis going away shows as redis_connected 0 and reconnect attempts', async () => {
    await redis.kill();
    // The publisher must have seen the close (the subscriber may notice first), or the send
    // below would go to a dead socket instead of being counted as dropped.
    await eventually(
      () => {
        const bus = server.helper.getStats().bus;
        const reasons = server.helper.getReadiness().reasons;
        return !bus || (bus.reconnects > 0 && reasons.some((r) => r.startsWith('redis publisher')));
      },
      5_000,
      'reconnecting',
    );
    let down = await scrape();
    for (let i = 0; i < 100 && value(down, 'roomcast_redis_connected') !== 0; i++) {
      await Bun.sleep(20);
      down = await scrape();
    }
    expect(value(down, 'roomcast_redis_connected')).toBe(0);
    expect(value(down, 'roomcast_redis_reconnects_total')).toBeGreaterThan(0);
    server.helper.send({ payload: { topic: 'lost', data: 1 } });
    const dropped = await scrape();
    expect(
      value(dropped, 'roomcast_messages_dropped_total', { reason: 'redis_disconnected' }),
    ).toBeGreaterThan(0);
    await redis.restart();
    let up = 0;
    for (let i = 0; i < 100 && up !== 1; i++) {
      up = value(await scrape(), 'roomcast_redis_connected');
      if (up !== 1) await Bun.sleep(50);
    }
    expect(up).toBe(1);
  });

  // The dashboard's queries against a real scrape: test/metrics/dashboard.test.ts.

  test('a registry of the application and a custom prefix', async () => {
    const registry = new Registry();
    const custom = await startServer({ metrics: { registry, prefix: 'chat_ws_' } });
    try {
      const text = await registry.metrics();
      expect(text).toContain('chat_ws_connections ');
      expect(text).not.toContain('roomcast_');
      // Single-instance mode: no Redis gauge that would read as "Redis down".
      expect(text).not.toContain('chat_ws_redis_connected');
      expect(text).toContain('chat_ws_bus_published_total');
      expect(custom.helper.getMetrics()?.registry).toBe(registry);
      const publishOnly = { publish: () => 0, pendingWebSockets: 0 };
      expect(
        () =>
          new WebSocketServerHelper({
            identifier: 'x',
            server: publishOnly,
            authenticateFn: () => null,
            metrics: { prefix: '1bad' },
          }),
      ).toThrow('metrics.prefix "1bad" is not a valid metric name prefix');
    } finally {
      await custom.stop();
    }
  });
});

describe('loading', () => {
  test('prom-client is loaded only when a helper turns metrics on', async () => {
    // A fresh process: this test file itself imports prom-client.
    const script = `
      const { WebSocketServerHelper, silentLogger } = await import(${JSON.stringify(`${import.meta.dir}/../../src/index.ts`)});
      const loaded = () => Object.keys(require.cache).some((path) => path.includes('/prom-client/'));
      const server = { publish: () => 0, upgrade: () => false };
      const make = (metrics) => new WebSocketServerHelper({ identifier: 'p', server, logger: silentLogger, authenticateFn: () => ({}), metrics });
      make(undefined);
      const before = loaded();
      const helper = make(true);
      console.log(JSON.stringify({ before, after: loaded(), registry: typeof helper.getMetrics?.()?.registry?.metrics }));
    `;
    const proc = Bun.spawn([process.execPath, '-e', script], { stdout: 'pipe', stderr: 'pipe' });
    const [out, err] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    expect(await proc.exited, err).toBe(0);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
      before: false,
      after: true,
      registry: 'function',
    });
  });
});
