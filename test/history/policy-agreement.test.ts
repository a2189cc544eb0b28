import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Redis from 'ioredis';
import { historyKeys } from '../../src/history/keys.ts';
import type { IHistoryPolicy, THistoryFn } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { parseScrape } from '../support/scrape.ts';
import { type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import type { IFrame } from '../support/ws-client.ts';
import { TestClient } from '../support/ws-client.ts';
import { startEmitter } from './support.ts';

/**
 * No silent bypass of history (issue 18, point 5), on a real redis-server: an emitter without
 * `historyFn` publishing into a room the instances keep history for gets a position (from the
 * policy stored with the room's position), and instances whose `historyFn`s disagree report it
 * (log + `roomcast_history_policy_mismatches_total`).
 */

const keep =
  (size: number): THistoryFn =>
  ({ room }): IHistoryPolicy | null =>
    room.startsWith('h-') ? { size, ttl: 60_000 } : null;
const validateRoomFn = ({ rooms }: { rooms: string[] }) => rooms;
type Positioned = IFrame & { offset?: number; epoch?: string };

let redisServer: RedisServer;
let a: ITestServer;
let b: ITestServer;
let none: ITestServer;
const logB = recordingLogger();
const logA = recordingLogger();
const logNone = recordingLogger();

beforeAll(async () => {
  redisServer = await RedisServer.start();
  const redis = { host: '127.0.0.1', port: redisServer.port };
  a = await startServer({ redis, validateRoomFn, historyFn: keep(100), metrics: true, logger: logA });
  // Same rooms, another size: a policy disagreement.
  b = await startServer({ redis, validateRoomFn, historyFn: keep(50), metrics: true, logger: logB });
  // A historyFn that keeps nothing: its send()s to h- rooms carry no position.
  none = await startServer({ redis, validateRoomFn, historyFn: () => null, metrics: true, logger: logNone });
});

afterAll(async () => {
  await Promise.all([a.stop(), b.stop(), none.stop()]);
  await redisServer.stop();
});

async function member(url: string, room: string) {
  const client = await TestClient.authenticated(url);
  client.send({ event: 'join', data: { rooms: [room] }, id: 'j' });
  await client.next('join');
  return client;
}

async function mismatches(server: ITestServer): Promise<Record<string, number>> {
  const values = parseScrape(await server.helper.getMetrics()!.metrics());
  const out: Record<string, number> = {};
  for (const kind of ['policy', 'unpositioned', 'positioned']) {
    out[kind] = values.get(`roomcast_history_policy_mismatches_total{kind=${kind}}`) ?? -1;
  }
  return out;
}

describe('no silent bypass of history', () => {
  test('an emitter without historyFn publishing into a history room gets a position, and the publication is recoverable', async () => {
    const client = await member(a.url, 'h-emit');
    a.helper.send({ destination: 'h-emit', payload: { topic: 'm', data: 'first' } });
    await client.until(() => client.all('m').length === 1, 'first publication');
    const { emitter, stop } = await startEmitter(redisServer.port, undefined as unknown as THistoryFn);
    try {
      const position = await emitter.toRoom({ room: 'h-emit', event: 'm', data: 'from emitter' });
      expect(position?.offset).toBe(2);
      await client.until(() => client.all('m').length === 2, 'emitter publication');
      const frames = client.all('m') as Positioned[];
      expect(frames.map((f) => f.offset)).toEqual([1, 2]);
      // Retained: a history read (what a recovery serves) has it.
      const page = await a.helper.history({ room: 'h-emit' });
      expect(page.publications.map((p) => p.data)).toEqual(['first', 'from emitter']);
      // A room nobody keeps history for stays unpositioned.
      expect(await emitter.toRoom({ room: 'plain', event: 'm', data: 1 })).toBeUndefined();
    } finally {
      client.close();
      await stop();
    }
  });

  test('an emitter without historyFn into a never-published history room: no position, but a recovery across it is not recovered (one hole for the fleet)', async () => {
    const early = await member(a.url, 'h-hole');
    const emptyPosition = (early.all('join')[0]!.data as { positions: Record<string, unknown> }).positions[
      'h-hole'
    ] as { offset: number; epoch: string };
    expect(emptyPosition.offset).toBe(0);
    early.close();
    const { emitter, stop } = await startEmitter(redisServer.port, undefined as unknown as THistoryFn);
    const reader = new Redis(redisServer.port, '127.0.0.1');
    try {
      const watcher = await member(b.url, 'h-hole');
      // Nothing stored for the room yet: the emitter cannot know it keeps history, so no position.
      expect(await emitter.toRoom({ room: 'h-hole', event: 'm', data: 'unrecoverable' })).toBeUndefined();
      await watcher.until(() => watcher.all('m').length === 1, 'the publication, live');
      // Both instances keep history for the room and received it: exactly one hole between them.
      const offset = () => reader.hget(historyKeys('h-hole').meta, 'offset');
      for (let waited = 0; (await offset()) !== '1' && waited < 3_000; waited += 20) await Bun.sleep(20);
      await Bun.sleep(100); // the second instance's attempt, which must find the hole made
      expect(await reader.hget(historyKeys('h-hole').meta, 'offset')).toBe('1');
      // A client that was away during it is told it was not recovered (before: recovered: true).
      const back = await TestClient.authenticated(a.url);
      back.send({ event: 'join', data: { rooms: ['h-hole'], since: { 'h-hole': emptyPosition } }, id: 'j' });
      expect((await back.next('join')).data.recovered).toEqual({ 'h-hole': false });
      // From now on the room's stored policy positions the emitter's publications.
      expect((await emitter.toRoom({ room: 'h-hole', event: 'm', data: 'kept' }))?.offset).toBe(2);
      back.close();
      watcher.close();
    } finally {
      reader.disconnect();
      await stop();
    }
  });

  test('instances with different policies for one room: detected, logged, counted', async () => {
    const onA = await member(a.url, 'h-split');
    a.helper.send({ destination: 'h-split', payload: { topic: 'm', data: 1 } });
    await onA.until(() => onA.all('m').length === 1, 'publication from a');
    b.helper.send({ destination: 'h-split', payload: { topic: 'm', data: 2 } });
    await onA.until(() => onA.all('m').length === 2, 'publication from b');
    const fromB = await mismatches(b);
    expect(fromB.policy).toBeGreaterThanOrEqual(1);
    expect(
      logB.lines.some((l) => l.level === 'warn' && /History policy disagreement \(policy\)/.test(l.message)),
    ).toBe(true);
    onA.close();
  });

  test('an instance that keeps no history for the room: its unpositioned send is reported where history is kept, and positioned ones are reported there', async () => {
    const onA = await member(a.url, 'h-none');
    const before = await mismatches(a);
    none.helper.send({ destination: 'h-none', payload: { topic: 'm', data: 'bypass' } });
    await onA.until(() => onA.all('m').length === 1, 'unpositioned publication');
    expect((onA.all('m')[0] as Positioned).offset).toBeUndefined();
    expect((await mismatches(a)).unpositioned).toBe((before.unpositioned ?? 0) + 1);
    expect(logA.lines.some((l) => l.level === 'warn' && /cannot be recovered/.test(l.message))).toBe(true);
    // And the instance that keeps none sees positioned publications of a room it thinks has no history.
    const onNone = await member(none.url, 'h-none');
    a.helper.send({ destination: 'h-none', payload: { topic: 'm', data: 'positioned' } });
    await onNone.until(() => onNone.all('m').length === 1, 'positioned publication');
    expect((await mismatches(none)).positioned).toBeGreaterThanOrEqual(1);
    expect(logNone.lines.some((l) => l.level === 'warn' && /\(positioned\)/.test(l.message))).toBe(true);
    onA.close();
    onNone.close();
  });
});
