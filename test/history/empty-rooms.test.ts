import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import type { IHistoryPolicy, WebSocketEmitter } from '../../src/index.ts';
import type { ITestServer } from '../support/server.ts';
import { type IFrame, TestClient } from '../support/ws-client.ts';
import { startHistoryPair } from './support.ts';

/**
 * Item of issue 17: a client that joins, reads and leaves rooms with history that were never
 * published to must not make Redis keep anything per room. Joins of such rooms answer an empty
 * position that stays valid once the first publication creates the stream.
 */
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 100, ttl: 60_000 } : null;

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

/** The frame answering request `id`. */
async function answer(client: TestClient, event: string, id: string): Promise<IFrame> {
  let found: IFrame | undefined;
  await client.until(() => {
    found = client.frames.find((f) => f.event === event && f.id === id);
    return found !== undefined;
  }, `${event} ${id}`);
  return found!;
}

async function joinRooms(client: TestClient, rooms: string[], since?: Record<string, unknown>, id = 'j') {
  client.send({ event: 'join', data: since ? { rooms, since } : { rooms }, id });
  return (await answer(client, 'join', id)).data as {
    positions: Record<string, { offset: number; epoch: string }>;
    recovered?: Record<string, boolean>;
  };
}

describe('rooms with history that were never published to', () => {
  test('joining, reading and leaving 1 000 fresh rooms leaves the Redis key count unchanged', async () => {
    const client = await TestClient.authenticated(a.url);
    // The one fleet-wide key a read may create (the generation) exists after the first read.
    await joinRooms(client, ['h-warm'], undefined, 'warm');
    const before = await spy.dbsize();
    expect(before).toBe(1); // the generation key, nothing of h-warm
    // Ten clients of 100 rooms each (one client would meet the default rate limit first).
    for (let batch = 0; batch < 10; batch++) {
      const flooder = await TestClient.authenticated(batch % 2 === 0 ? a.url : b.url);
      const rooms = Array.from({ length: 100 }, (_, i) => `h-flood-${batch}-${i}`);
      for (let c = 0; c < rooms.length; c += 20) {
        const chunk = rooms.slice(c, c + 20);
        const reply = await joinRooms(flooder, chunk, undefined, `j${batch}-${c}`);
        expect(Object.keys(reply.positions)).toHaveLength(chunk.length);
        for (const room of chunk) {
          flooder.send({ event: 'ws:history', data: { room, reverse: true }, id: `h-${room}` });
          expect((await answer(flooder, 'ws:history', `h-${room}`)).data.offset).toBe(0);
        }
        flooder.send({ event: 'leave', data: { rooms: chunk }, id: `l${batch}-${c}` });
        await answer(flooder, 'leave', `l${batch}-${c}`);
      }
      flooder.close();
    }
    // A recovery naming an empty position of a room still without stream creates nothing either.
    const reply = await joinRooms(client, ['h-flood-again'], undefined, 'again');
    const empty = reply.positions['h-flood-again']!;
    const again = await joinRooms(client, ['h-flood-again'], { 'h-flood-again': empty }, 'again2');
    expect(again.recovered).toEqual({ 'h-flood-again': true });
    await emitter.history({ room: 'h-flood-emitter' });
    expect(await spy.dbsize()).toBe(before);
    client.close();
  });

  test('an empty position stays valid when the first publication creates the stream: recovered, from offset 1', async () => {
    const first = await TestClient.authenticated(a.url);
    const reply = await joinRooms(first, ['h-later']);
    const empty = reply.positions['h-later']!;
    expect(empty).toEqual({ offset: 0, epoch: expect.stringMatching(/^~/) });
    first.close();
    await first.closed;
    for (let i = 1; i <= 3; i++) await emitter.toRoom({ room: 'h-later', event: 'm', data: i });
    const second = await TestClient.authenticated(b.url);
    const recovered = await joinRooms(second, ['h-later'], { 'h-later': empty });
    expect(recovered.recovered).toEqual({ 'h-later': true });
    const { epoch } = await emitter.history({ room: 'h-later', limit: 0 });
    expect(recovered.positions['h-later']).toEqual({ offset: 3, epoch });
    await second.until(() => second.all('m').length === 3, 'the 3 missed');
    expect(second.all('m').map((f) => f.data)).toEqual([1, 2, 3]);
    second.close();
  });

  test('an empty position is refused once something could have been missed: removeHistory, a foreign generation, a time in the future', async () => {
    const client = await TestClient.authenticated(a.url);
    const empty = (await joinRooms(client, ['h-removed'])).positions['h-removed']!;
    await emitter.toRoom({ room: 'h-removed', event: 'm', data: 1 });
    await a.helper.removeHistory({ room: 'h-removed' });
    await emitter.toRoom({ room: 'h-removed', event: 'm', data: 2 });
    const afterRemove = await joinRooms(client, ['h-removed'], { 'h-removed': empty }, 'r1');
    expect(afterRemove.recovered).toEqual({ 'h-removed': false });

    const [, at] = empty.epoch.split('.');
    const foreign = { offset: 0, epoch: `~someoneelse.${at}` };
    const future = { offset: 0, epoch: `${empty.epoch.split('.')[0]}.${Date.now() + 3_600_000}` };
    const nonZero = { offset: 1, epoch: empty.epoch };
    for (const [i, since] of [foreign, future, nonZero].entries()) {
      const r = await joinRooms(client, ['h-never'], { 'h-never': since }, `n${i}`);
      expect(r.recovered).toEqual({ 'h-never': false });
    }
    client.close();
  });
});
