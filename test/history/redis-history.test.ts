import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { HistoryError, historyKeys, type IHistoryPolicy, type WebSocketEmitter } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { expectSilence, type IFrame, TestClient } from '../support/ws-client.ts';
import { startEmitter, startHistoryPair } from './support.ts';

/** Rooms named `h-*` keep the last 100 publications for a minute; `short-*` for 300 ms. */
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null => {
  if (room.startsWith('h-')) return { size: 100, ttl: 60_000 };
  if (room.startsWith('short-')) return { size: 100, ttl: 300 };
  return null;
};
const validateRoomFn = ({ rooms }: { rooms: string[] }) => rooms;

let pair: Awaited<ReturnType<typeof startHistoryPair>>;
let a: ITestServer;
let b: ITestServer;
let emitter: WebSocketEmitter;
let spy: Redis;

beforeAll(async () => {
  pair = await startHistoryPair(historyFn);
  ({ a, b, emitter } = pair);
  spy = new Redis({ host: '127.0.0.1', port: pair.redisServer.port, lazyConnect: true });
  await spy.connect();
});

afterAll(async () => {
  spy.disconnect();
  await pair.stop();
});

type Positioned = IFrame & { room: string; offset: number; epoch: string };
const positioned = (client: TestClient, event: string) => client.all(event) as Positioned[];

async function joined(url: string, rooms: string[], since?: Record<string, unknown>) {
  const client = await TestClient.authenticated(url);
  client.send({ event: 'join', data: since ? { rooms, since } : { rooms }, id: 'j' });
  const reply = await client.next('join');
  return { client, reply };
}

describe('history over Redis', () => {
  test('positions grow by exactly 1 across two instances and the emitter; every instance delivers in offset order', async () => {
    const onA = await joined(a.url, ['h-order']);
    const onB = await joined(b.url, ['h-order']);
    // Never published: empty positions (the read created nothing); the first publication sets the epoch.
    for (const { reply } of [onA, onB]) {
      expect(reply.data.positions['h-order']).toEqual({ offset: 0, epoch: expect.stringMatching(/^~/) });
    }
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) a.helper.send({ destination: 'h-order', payload: { topic: 'm', data: `a${i}` } });
      else if (i % 3 === 1) b.helper.send({ destination: 'h-order', payload: { topic: 'm', data: `b${i}` } });
      else sends.push(emitter.toRoom({ room: 'h-order', event: 'm', data: `e${i}` }));
    }
    const emitted = (await Promise.all(sends)) as Array<{ offset: number; epoch: string }>;
    const epoch = emitted[0]!.epoch;
    expect(epoch).not.toMatch(/^~/);
    expect(emitted.every((p) => p.epoch === epoch && p.offset >= 1 && p.offset <= 60)).toBe(true);
    for (const { client } of [onA, onB]) {
      await client.until(() => client.all('m').length === 60, '60 publications');
      const frames = positioned(client, 'm');
      expect(frames.map((f) => f.offset)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(new Set(frames.map((f) => f.epoch))).toEqual(new Set([epoch]));
      expect(frames.every((f) => f.room === 'h-order')).toBe(true);
    }
    // Both instances saw the same order (same data at the same offset).
    expect(onA.client.all('m').map((f) => f.data)).toEqual(onB.client.all('m').map((f) => f.data));
    await Bun.sleep(50);
    expect(onA.client.all('m').length).toBe(60); // own publications are delivered once, from Pub/Sub
    onA.client.close();
    onB.client.close();
  });

  test('recovery across instances: reconnecting to the other instance gets exactly the missed ones, in order, once', async () => {
    const first = await joined(a.url, ['h-move']);
    for (let i = 1; i <= 5; i++) a.helper.send({ destination: 'h-move', payload: { topic: 'm', data: i } });
    await first.client.until(() => first.client.all('m').length === 5);
    const last = positioned(first.client, 'm').at(-1)!;
    first.client.close();
    await first.client.closed;
    for (let i = 6; i <= 12; i++) await emitter.toRoom({ room: 'h-move', event: 'm', data: i });
    const { client, reply } = await joined(b.url, ['h-move'], {
      'h-move': { offset: last.offset, epoch: last.epoch },
    });
    expect(reply.data.recovered).toEqual({ 'h-move': true });
    expect(reply.data.positions['h-move']).toEqual({ offset: 12, epoch: last.epoch });
    b.helper.send({ destination: 'h-move', payload: { topic: 'm', data: 13 } });
    await client.until(() => client.all('m').length === 8);
    await Bun.sleep(50);
    expect(positioned(client, 'm').map((f) => f.offset)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
    expect(client.all('m').map((f) => f.data)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
    client.close();
  });

  test('offline longer than the retained window (ttl): recovered false, live from the position', async () => {
    const first = await joined(a.url, ['short-gone']);
    const epoch = first.reply.data.positions['short-gone'].epoch;
    first.client.close();
    await emitter.toRoom({ room: 'short-gone', event: 'm', data: 1 });
    await Bun.sleep(400);
    const { client, reply } = await joined(b.url, ['short-gone'], { 'short-gone': { offset: 0, epoch } });
    expect(reply.data.recovered).toEqual({ 'short-gone': false });
    // The empty position stood for offset 0 of the stream created after it: offset 1 is gone (ttl).
    expect(reply.data.positions['short-gone']).toEqual({ offset: 1, epoch: expect.not.stringMatching(/^~/) });
    await expectSilence(client, 'm', 50);
    client.close();
  });

  test('FLUSHALL (history lost): a new epoch, recovered false, offsets restart at 1', async () => {
    const first = await joined(a.url, ['h-flush']);
    await emitter.toRoom({ room: 'h-flush', event: 'm', data: 1 });
    await first.client.until(() => first.client.all('m').length === 1);
    const old = positioned(first.client, 'm')[0]!;
    await spy.flushall();
    const next = await emitter.toRoom({ room: 'h-flush', event: 'm', data: 2 });
    expect(next!.offset).toBe(1);
    expect(next!.epoch).not.toBe(old.epoch);
    const { client, reply } = await joined(b.url, ['h-flush'], {
      'h-flush': { offset: old.offset, epoch: old.epoch },
    });
    expect(reply.data.recovered).toEqual({ 'h-flush': false });
    expect(reply.data.positions['h-flush']).toEqual(next);
    first.client.close();
    client.close();
  });

  test('history() and removeHistory() on the helper and the emitter', async () => {
    const room = 'h-api';
    for (let i = 1; i <= 5; i++) await emitter.toRoom({ room, event: 'm', data: { i } });
    const all = await a.helper.history({ room });
    expect(all.offset).toBe(5);
    expect(all.publications).toEqual([1, 2, 3, 4, 5].map((i) => ({ offset: i, event: 'm', data: { i } })));
    const epoch = all.epoch;
    expect(await emitter.history({ room, since: { offset: 3, epoch } })).toEqual({
      publications: [4, 5].map((i) => ({ offset: i, event: 'm', data: { i } })),
      offset: 5,
      epoch,
    });
    expect(
      (await b.helper.history({ room, limit: 2, reverse: true })).publications.map((p) => p.offset),
    ).toEqual([5, 4]);
    expect(
      (await b.helper.history({ room, since: { offset: 1, epoch }, limit: 2 })).publications.map(
        (p) => p.offset,
      ),
    ).toEqual([2, 3]);
    expect(
      (
        await b.helper.history({ room, since: { offset: 1, epoch }, limit: 2, reverse: true })
      ).publications.map((p) => p.offset),
    ).toEqual([5, 4]);
    expect((await b.helper.history({ room, limit: 0 })).publications).toEqual([]);
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (e instanceof HistoryError ? e.code : String(e)),
      );
    expect(await codeOf(a.helper.history({ room, since: { offset: 1, epoch: 'other' } }))).toBe(
      'UNRECOVERABLE_POSITION',
    );
    expect(await codeOf(a.helper.history({ room, since: { offset: 6, epoch } }))).toBe(
      'UNRECOVERABLE_POSITION',
    );
    expect(await codeOf(a.helper.history({ room: 'plain' }))).toBe('HISTORY_UNAVAILABLE');
    expect(await codeOf(a.helper.history({ room, limit: -1 }))).toBe('INVALID_REQUEST');
    expect(await codeOf(emitter.history({ room: 'ws:x' }))).toBe('INVALID_REQUEST');

    await a.helper.removeHistory({ room });
    expect(await spy.exists(historyKeys(room).meta, historyKeys(room).stream)).toBe(0);
    const fresh = await emitter.toRoom({ room, event: 'm', data: 'again' });
    expect(fresh!.offset).toBe(1);
    expect(fresh!.epoch).not.toBe(epoch);
    await emitter.removeHistory({ room });
    expect(await spy.exists(historyKeys(room).meta)).toBe(0);
  });

  test('keys: position and stream under ws:history:{room}, both with expiries; the meta outlives the stream', async () => {
    const room = 'h-keys';
    await emitter.toRoom({ room, event: 'm', data: 1 });
    const keys = historyKeys(room);
    expect(keys).toEqual({ meta: 'ws:history:{h-keys}:meta', stream: 'ws:history:{h-keys}:stream' });
    const [metaTtl, streamTtl] = await Promise.all([spy.pttl(keys.meta), spy.pttl(keys.stream)]);
    expect(streamTtl).toBeGreaterThan(0);
    expect(streamTtl).toBeLessThanOrEqual(60_000);
    expect(metaTtl).toBeGreaterThan(60_000);
    expect(await spy.hgetall(keys.meta)).toEqual({
      epoch: expect.any(String),
      offset: '1',
      created: expect.stringMatching(/^\d+$/),
      p: expect.stringMatching(/^\d+:\d+:\d+$/), // the policy: metaTtl:ttl:size
    });
    expect(await spy.xlen(keys.stream)).toBe(1);
    // size bounds the stream
    for (let i = 0; i < 120; i++) await emitter.toRoom({ room, event: 'm', data: i });
    expect(await spy.xlen(keys.stream)).toBe(100);
  });

  test('ws:history: reply shape, the documented errors, and the id echoed', async () => {
    const room = 'h-req';
    for (let i = 1; i <= 3; i++) await emitter.toRoom({ room, event: 'm', data: i });
    const { client } = await joined(b.url, [room, 'plain']);
    client.send({ event: 'ws:history', data: { room, limit: 2 }, id: '9' });
    const reply = await client.next('ws:history');
    expect(reply.id).toBe('9');
    const epoch = reply.data.epoch;
    expect(reply.data).toEqual({
      publications: [
        { offset: 1, event: 'm', data: 1 },
        { offset: 2, event: 'm', data: 2 },
      ],
      offset: 3,
      epoch,
    });
    const cases: Array<[unknown, string]> = [
      [{ room: 'h-not-joined' }, 'NOT_IN_ROOM'],
      [{ room: 'plain' }, 'HISTORY_UNAVAILABLE'],
      [{ room, since: { offset: 1, epoch: 'nope' } }, 'UNRECOVERABLE_POSITION'],
      [{ room, limit: 'x' }, 'INVALID_REQUEST'],
      [{ room, since: { offset: -2, epoch } }, 'INVALID_REQUEST'],
      [{ room, reverse: 1 }, 'INVALID_REQUEST'],
      ['nope', 'INVALID_REQUEST'],
    ];
    for (const [i, [data, code]] of cases.entries()) {
      const from = client.frames.length;
      client.send({ event: 'ws:history', data, id: `e${i}` });
      const error = await client.next('error', (d) => d.code === code, 3_000, from);
      expect(error.id).toBe(`e${i}`);
    }
    client.close();
  });
});

describe('mixed deployments and bounds', () => {
  test('an instance without historyFn delivers publications the emitter positioned, with their position', async () => {
    const plainInstance = await startServer({
      redis: { host: '127.0.0.1', port: pair.redisServer.port },
      validateRoomFn,
    });
    try {
      const { client, reply } = await joined(plainInstance.url, ['h-mixed']);
      expect(reply.data).toEqual({ rooms: ['h-mixed'] });
      const position = await emitter.toRoom({ room: 'h-mixed', event: 'm', data: 'x' });
      const frame = (await client.next('m')) as Positioned;
      expect({ offset: frame.offset, epoch: frame.epoch, room: frame.room }).toEqual({
        ...position!,
        room: 'h-mixed',
      });
      client.close();
    } finally {
      await plainInstance.stop();
    }
  });

  test('ws:history: at most 4 requests of a client in flight; every request is answered once', async () => {
    await emitter.toRoom({ room: 'h-burst', event: 'm', data: 1 });
    const { client } = await joined(a.url, ['h-burst']);
    const from = client.frames.length;
    for (let i = 0; i < 40; i++) client.send({ event: 'ws:history', data: { room: 'h-burst' }, id: `q${i}` });
    await client.until(() => client.frames.length - from >= 40, '40 answers');
    await Bun.sleep(50);
    const answers = client.frames.slice(from);
    expect(answers.length).toBe(40);
    expect(new Set(answers.map((f) => f.id)).size).toBe(40);
    const refused = answers.filter((f) => f.event === 'error');
    expect(refused.every((f) => f.data.code === 'TOO_MANY_REQUESTS')).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.filter((f) => f.event === 'ws:history').length).toBeGreaterThanOrEqual(4);
    client.close();
  });
});

describe('bad timing', () => {
  test('a client that disconnects mid-recovery leaves nothing behind', async () => {
    for (let i = 0; i < 20; i++) await emitter.toRoom({ room: 'h-leave', event: 'm', data: i });
    const clients = await Promise.all(Array.from({ length: 10 }, () => TestClient.authenticated(a.url)));
    for (const client of clients) {
      client.send({
        event: 'join',
        data: { rooms: ['h-leave', 'plain'], since: { 'h-leave': { offset: 0, epoch: 'x' } } },
      });
      client.close();
    }
    await eventually(() => a.helper.getStats().clients === 0, 2_000, 'clients gone');
    await eventually(() => a.helper.getStats().recovering === 0, 2_000, 'captures released');
    expect(a.helper.getStats().rooms).toBe(0);
    expect(a.helper.getClientsByRoom({ room: 'h-leave' })).toEqual([]);
  });
});

describe('Redis down', () => {
  test('send() to a history room is dropped and counted; the emitter rejects; recovery answers false; no crash', async () => {
    const own = await RedisServer.start();
    const redis = { host: '127.0.0.1', port: own.port };
    const server = await startServer({ redis, validateRoomFn, historyFn });
    const { emitter: em, stop: stopEmitter } = await startEmitter(own.port, historyFn);
    try {
      const { client, reply } = await joined(server.url, ['h-down']);
      const epoch = reply.data.positions['h-down'].epoch;
      await own.kill();
      await Bun.sleep(100); // ioredis has seen the connection close
      const dropped = () => {
        const bus = server.helper.getStats().bus!;
        return bus.droppedWhileDisconnected + bus.historyFailed;
      };
      const before = dropped();
      server.helper.send({ destination: 'h-down', payload: { topic: 'm', data: 1 } });
      await eventually(() => dropped() === before + 1, 1_000, 'drop counted');
      expect(server.helper.getStats().bus!.droppedWhileDisconnected).toBe(1);
      await expect(em.toRoom({ room: 'h-down', event: 'm', data: 1 })).rejects.toThrow(/not connected/);
      await expect(em.history({ room: 'h-down' })).rejects.toMatchObject({ code: 'HISTORY_UNAVAILABLE' });
      await expect(server.helper.history({ room: 'h-down' })).rejects.toMatchObject({
        code: 'HISTORY_UNAVAILABLE',
      });
      const again = await joined(server.url, ['h-down'], { 'h-down': { offset: 0, epoch } });
      expect(again.reply.data.rooms).toEqual(['h-down']);
      expect(again.reply.data.recovered).toEqual({ 'h-down': false });
      expect(again.reply.data.positions).toBeUndefined();
      client.send({ event: 'ws:history', data: { room: 'h-down' }, id: 'h' });
      expect((await client.next('error', (d) => d.code === 'HISTORY_UNAVAILABLE')).id).toBe('h');
      client.close();
      again.client.close();
    } finally {
      await stopEmitter();
      await server.stop();
      await own.stop();
    }
  });
});
