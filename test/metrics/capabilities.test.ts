import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { AnyRecord } from '../../src/common/types.ts';
import type { IHistoryPolicy } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { parseScrape } from '../support/scrape.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * The metrics of the later capabilities (history, recovery, token refresh, drain, the
 * cross-instance latency), scraped from two real instances over a real Redis and parsed with an
 * independent Prometheus text parser.
 */

const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 3, ttl: 60_000 } : null;
const LIFETIME = 400;
/** `short:<user>` expires after LIFETIME ms; `ok` never expires; anything else is refused. */
function authenticateFn(data: AnyRecord) {
  if (data.token === 'ok') return { userId: 'u1' };
  const [kind, user] = String(data.token ?? '').split(':');
  return kind === 'short' ? { userId: user, expiresAt: Date.now() + LIFETIME } : null;
}

let redis: RedisServer;
let a: ITestServer;
let b: ITestServer;

beforeAll(async () => {
  redis = await RedisServer.start();
  const common = {
    redis: { host: '127.0.0.1', port: redis.port },
    validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
    historyFn,
    authenticateFn,
    tokenRefreshLead: 200,
    metrics: true,
  };
  a = await startServer(common);
  b = await startServer(common);
});
afterAll(async () => {
  await a.stop();
  await b.stop();
  await redis.stop();
});

/** `name{label=value,…}` → value, for every sample of the scrape. */
async function scrape(srv: ITestServer): Promise<Map<string, number>> {
  return parseScrape(await srv.helper.getMetrics()!.metrics());
}
const delta = (after: Map<string, number>, before: Map<string, number>, key: string) =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);

async function joined(url: string, rooms: string[], since?: Record<string, unknown>) {
  const client = await TestClient.authenticated(url);
  client.send({ event: 'join', data: since ? { rooms, since } : { rooms }, id: 'j' });
  const reply = await client.next('join');
  return {
    client,
    reply: reply.data as { positions: Record<string, { epoch: string }>; recovered?: unknown },
  };
}

describe('metrics of history, recovery, refresh, drain and the bus', () => {
  test('history publications, recovery outcomes and the cross-instance latency', async () => {
    const beforeA = await scrape(a);
    const beforeB = await scrape(b);
    const first = await joined(b.url, ['h-m']);
    for (let i = 1; i <= 5; i++) a.helper.send({ destination: 'h-m', payload: { topic: 'm', data: i } });
    await first.client.until(() => first.client.all('m').length === 5, '5 publications');
    const epoch = (first.client.all('m')[0] as unknown as { epoch: string }).epoch;

    // Recovered (from offset 3 of 5, size 3 retained), not retained (offset 0: 1–2 are gone),
    // and a rejoin from an epoch that does not exist.
    const recovered = await joined(b.url, ['h-m'], { 'h-m': { offset: 3, epoch } });
    expect(recovered.reply.recovered).toEqual({ 'h-m': true });
    const lost = await joined(b.url, ['h-m'], { 'h-m': { offset: 0, epoch } });
    expect(lost.reply.recovered).toEqual({ 'h-m': false });
    const foreign = await joined(b.url, ['h-m'], { 'h-m': { offset: 1, epoch: 'other-epoch' } });
    expect(foreign.reply.recovered).toEqual({ 'h-m': false });

    const afterA = await scrape(a);
    const afterB = await scrape(b);
    expect(delta(afterA, beforeA, 'roomcast_history_published_total')).toBe(5);
    expect(delta(afterB, beforeB, 'roomcast_history_published_total')).toBe(0);
    expect(delta(afterB, beforeB, 'roomcast_recoveries_total{outcome=recovered}')).toBe(1);
    expect(delta(afterB, beforeB, 'roomcast_recoveries_total{outcome=not_retained}')).toBe(2);
    expect(afterB.get('roomcast_recovering_rooms')).toBe(0);
    expect(afterA.get('roomcast_history_publish_failed_total')).toBe(0);
    // Both instances have metrics on: each of A's 5 publications came back with its timestamp,
    // to B and (history publications are delivered from Pub/Sub everywhere) to A itself.
    expect(delta(afterB, beforeB, 'roomcast_bus_latency_seconds:count')).toBe(5);
    expect(delta(afterA, beforeA, 'roomcast_bus_latency_seconds:count')).toBe(5);
    // A plain (non-history) room message is timed once, on the receiving instance.
    const plain = await joined(b.url, ['plain']);
    a.helper.send({ destination: 'plain', payload: { topic: 'p', data: 1 } });
    await plain.client.next('p');
    expect(delta(await scrape(b), afterB, 'roomcast_bus_latency_seconds:count')).toBe(1);
    for (const { client } of [first, recovered, lost, foreign, plain]) client.close();
  });

  test('token refresh: requested, accepted, failed and expired', async () => {
    const before = await scrape(a);
    const good = await TestClient.authenticated(a.url, { token: 'short:alice' });
    const bad = await TestClient.authenticated(a.url, { token: 'short:bob' });
    const silent = await TestClient.authenticated(a.url, { token: 'short:carol' });
    expect((await scrape(a)).get('roomcast_connections_expiring')).toBe(3);
    await Promise.all([good, bad, silent].map((client) => client.next('ws:refresh', () => true, LIFETIME)));
    good.send({ event: 'ws:refresh', data: { token: 'short:alice' }, id: 'r' });
    await good.next('ws:refresh', (d) => d?.expiresAt !== undefined);
    const afterRefresh = await scrape(a);
    expect(afterRefresh.get('roomcast_connections_expiring')).toBe(3); // alice's clock restarted
    good.close(); // before its second request comes
    bad.send({ event: 'ws:refresh', data: { token: 'nope' }, id: 'r' });
    await bad.closedWithin();
    await silent.closedWithin(LIFETIME + 500);
    const after = await scrape(a);
    expect(delta(after, before, 'roomcast_token_refresh_total{outcome=requested}')).toBe(3);
    expect(delta(after, before, 'roomcast_token_refresh_total{outcome=accepted}')).toBe(1);
    expect(delta(after, before, 'roomcast_token_refresh_total{outcome=failed}')).toBe(1);
    expect(delta(after, before, 'roomcast_token_refresh_total{outcome=expired}')).toBe(1);
    expect(delta(after, before, 'roomcast_connections_closed_total{code=4006}')).toBe(2);
    await eventually(() => a.helper.getStats().expiryTimers === 0, 2_000, 'clocks gone');
    expect((await scrape(a)).get('roomcast_connections_expiring')).toBe(0);
  });

  test('a recovery whose history cannot be read (Redis down) counts as unavailable', async () => {
    const before = await scrape(b);
    const first = await joined(b.url, ['h-down']);
    const epoch = first.reply.positions['h-down']!.epoch;
    await redis.kill();
    try {
      const blind = await joined(b.url, ['h-down'], { 'h-down': { offset: 0, epoch } });
      expect(blind.reply.recovered).toEqual({ 'h-down': false });
      const after = await scrape(b);
      expect(delta(after, before, 'roomcast_recoveries_total{outcome=unavailable}')).toBe(1);
      expect(delta(after, before, 'roomcast_recoveries_total{outcome=recovered}')).toBe(0);
      blind.client.close();
    } finally {
      first.client.close();
      await redis.restart();
    }
  }, 20_000);

  test('draining is 0 while serving and 1 from the start of a drain', async () => {
    const srv = await startServer({ metrics: true });
    const client = await TestClient.authenticated(srv.url);
    expect((await scrape(srv)).get('roomcast_draining')).toBe(0);
    const stopping = srv.helper.shutdown({ drainWindow: 300 });
    expect((await scrape(srv)).get('roomcast_draining')).toBe(1);
    await client.closedWithin(2_000);
    await stopping;
    await srv.stop();
  });
});
