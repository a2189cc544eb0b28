import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type IHistoryPolicy, RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { type IFrame, TestClient } from '../support/ws-client.ts';

/**
 * A stalled Redis (redis-server SIGSTOPped, the TCP connection kept) under `send()` and
 * `toRoom()` traffic (issue 18, point 6): with `redisCommandTimeout`, nothing is delivered with a
 * position later than the bound after it was sent; the helper counts what it dropped, the
 * emitter's calls reject within the bound.
 */

const BOUND = 400;
const STALL = 1_600;
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 1_000, ttl: 60_000 } : null;

let redisServer: RedisServer;
let server: ITestServer;
let emitter: WebSocketEmitter;
let emitterRedis: RedisHelper;

/** The redis-server's pid (the harness keeps its process private). */
function redisPid(): number {
  return (redisServer as unknown as { proc: { pid: number } }).proc.pid;
}

beforeAll(async () => {
  redisServer = await RedisServer.start();
  server = await startServer({
    redis: { host: '127.0.0.1', port: redisServer.port },
    validateRoomFn: ({ rooms }) => rooms,
    historyFn,
    redisCommandTimeout: BOUND,
  });
  emitterRedis = new RedisHelper({
    name: 'emitter',
    host: '127.0.0.1',
    port: redisServer.port,
    autoConnect: false,
    logger: silentLogger,
  });
  emitter = new WebSocketEmitter({
    redisConnection: emitterRedis,
    logger: silentLogger,
    historyFn,
    redisCommandTimeout: BOUND,
  });
  await emitter.configure();
});

afterAll(async () => {
  try {
    process.kill(redisPid(), 'SIGCONT');
  } catch {}
  await emitter.shutdown();
  await emitterRedis.disconnect();
  await server.stop();
  await redisServer.stop();
});

type Positioned = IFrame & { offset: number; data: { at: number } };

describe('a stalled Redis', () => {
  test('publications past redisCommandTimeout are dropped (counted / rejected), never delivered late with a position', async () => {
    const client = await TestClient.authenticated(server.url);
    client.send({ event: 'join', data: { rooms: ['h-stall'] }, id: 'j' });
    await client.next('join');
    // Two publications before the stall: positions assigned, the clock offset to Redis learned.
    for (let i = 0; i < 2; i++) {
      server.helper.send({ destination: 'h-stall', payload: { topic: 'm', data: { at: Date.now() } } });
      await emitter.toRoom({ room: 'h-stall', event: 'm', data: { at: Date.now() } });
    }
    await client.until(() => client.all('m').length === 4, 'publications before the stall');

    // Arrival time of every frame, observed every 5 ms.
    const arrivals: number[] = [];
    const watcher = setInterval(() => {
      while (arrivals.length < client.all('m').length) arrivals.push(Date.now());
    }, 5);

    process.kill(redisPid(), 'SIGSTOP');
    const stalledAt = Date.now();
    const emitted: Array<Promise<{ ok: boolean; ms: number }>> = [];
    let sends = 0;
    while (Date.now() - stalledAt < STALL) {
      const at = Date.now();
      server.helper.send({ destination: 'h-stall', payload: { topic: 'm', data: { at } } });
      sends++;
      emitted.push(
        emitter.toRoom({ room: 'h-stall', event: 'm', data: { at } }).then(
          () => ({ ok: true, ms: Date.now() - at }),
          () => ({ ok: false, ms: Date.now() - at }),
        ),
      );
      await Bun.sleep(20);
    }
    // Every emitter call settled within the bound (plus scheduling slack) while Redis was still stopped.
    const outcomes = await Promise.all(emitted.slice(0, -Math.ceil(BOUND / 20) - 5));
    expect(outcomes.every((o) => !o.ok && o.ms < BOUND + 400)).toBe(true);

    process.kill(redisPid(), 'SIGCONT');
    await Bun.sleep(1_000);
    clearInterval(watcher);
    while (arrivals.length < client.all('m').length) arrivals.push(Date.now());

    const frames = client.all('m') as Positioned[];
    const late = frames
      .map((frame, i) => ({ offset: frame.offset, age: arrivals[i]! - frame.data.at }))
      .slice(4)
      .filter((f) => f.age > BOUND + 400);
    expect(late).toEqual([]);
    // Delivered ones keep their order and offsets without holes or repeats.
    const offsets = frames.map((f) => f.offset);
    expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i + 1));
    // The helper counted what it dropped (everything sent before the last BOUND ms of the stall).
    const stats = server.helper.getStats().bus!;
    expect(stats.historyTimedOut).toBeGreaterThanOrEqual(Math.floor((STALL - BOUND - 200) / 25));
    expect(stats.historyTimedOut).toBeLessThanOrEqual(sends);

    // After the stall, publications get positions again, continuing the same stream.
    await emitter.toRoom({ room: 'h-stall', event: 'm', data: { at: Date.now() } });
    await client.until(() => client.all('m').length === frames.length + 1, 'publication after the stall');
    expect((client.all('m').at(-1) as Positioned).offset).toBe(offsets.length + 1);
    client.close();
  }, 20_000);
});
