import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { silentLogger } from '../../src/common/logger.ts';
import { WebSocketEmitter } from '../../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { figure, watchProcessErrors } from '../support/figures.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * Redis is killed with SIGKILL (a crash, not a shutdown) while two instances
 * and an emitter keep sending, then started again on the same port. Twice: a
 * short outage (ioredis is still retrying quickly) and a longer one (the retry
 * delay has grown towards its 1 s cap).
 */

type TSource = 'a' | 'b' | 'e';
interface ITick {
  from: TSource;
  seq: number;
}

/** Bound the issue sets on "cross-instance delivery is back" after Redis accepts connections again. */
const RECOVERY_BOUND_MS = 2_000;
const TICK_MS = 10;
const OUTAGES_MS = [800, 3_000];

let redisServer: RedisServer;
let a: ITestServer;
let b: ITestServer;
let emitterRedis: RedisHelper;
let emitter: WebSocketEmitter;
let spy: Redis;
const loggerA = recordingLogger();

beforeAll(async () => {
  redisServer = await RedisServer.start();
  const redis = { host: '127.0.0.1', port: redisServer.port };
  a = await startServer({ redis, logger: loggerA, validateRoomFn: ({ rooms }) => rooms });
  b = await startServer({ redis, validateRoomFn: ({ rooms }) => rooms });
  emitterRedis = new RedisHelper({ name: 'emitter', ...redis, autoConnect: false, logger: silentLogger });
  emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  await emitter.configure();
});

afterAll(async () => {
  spy?.disconnect();
  await emitter.shutdown();
  await emitterRedis.disconnect();
  await a.stop();
  await b.stop();
  await redisServer.stop();
});

/** A client that records when each tick arrived (by source and sequence number). */
async function tickReceiver(
  url: string,
): Promise<{ client: TestClient; got: Map<string, number>; duplicates: () => number }> {
  const client = await TestClient.authenticated(url);
  client.send({ event: 'join', data: { rooms: ['stream'] } });
  await client.next('join');
  const got = new Map<string, number>();
  let duplicates = 0;
  client.ws.addEventListener('message', (e) => {
    const text = String(e.data);
    if (!text.startsWith('{"event":"tick"')) return;
    const tick = (JSON.parse(text) as { data: ITick }).data;
    const key = `${tick.from}:${tick.seq}`;
    if (got.has(key)) duplicates++;
    else got.set(key, Date.now());
  });
  return { client, got, duplicates: () => duplicates };
}

describe('Redis outage under traffic', () => {
  test('no crash or unhandled error, local delivery uninterrupted, cross-instance delivery and the emitter back within 2 s', async () => {
    const errors = watchProcessErrors();
    const onA = await tickReceiver(a.url);
    const onB = await tickReceiver(b.url);
    /** When each tick was handed to send() / the emitter. */
    const sentAt = new Map<string, number>();
    const seq: Record<TSource, number> = { a: 0, b: 0, e: 0 };
    let sendThrew = 0;
    let emitterRejected = 0;

    const tick = (): void => {
      const now = Date.now();
      for (const [from, helper] of [
        ['a', a.helper],
        ['b', b.helper],
      ] as const) {
        const data: ITick = { from, seq: seq[from]++ };
        sentAt.set(`${from}:${data.seq}`, now);
        try {
          helper.send({ destination: 'stream', payload: { topic: 'tick', data } });
        } catch {
          sendThrew++;
        }
      }
      const data: ITick = { from: 'e', seq: seq.e++ };
      sentAt.set(`e:${data.seq}`, now);
      // While Redis is down the emitter rejects (documented); that is counted, never left unhandled.
      emitter.toRoom({ room: 'stream', event: 'tick', data }).catch(() => emitterRejected++);
    };
    const stream = setInterval(tick, TICK_MS);

    /** First tick from `from`, sent at or after `since`, that reached `receiver`; its arrival time. */
    const firstArrival = (got: Map<string, number>, from: TSource, since: number): number | undefined => {
      let first: number | undefined;
      for (let n = 0; n < seq[from]; n++) {
        const key = `${from}:${n}`;
        if ((sentAt.get(key) ?? 0) < since) continue;
        const at = got.get(key);
        if (at !== undefined && (first === undefined || at < first)) first = at;
      }
      return first;
    };

    const recoveries: Array<{ outage: number; ab: number; ba: number; emitter: number }> = [];
    try {
      // Steady state first: every path works.
      const start = Date.now();
      await eventually(
        () =>
          firstArrival(onB.got, 'a', start) !== undefined &&
          firstArrival(onA.got, 'b', start) !== undefined &&
          firstArrival(onA.got, 'e', start) !== undefined,
        3_000,
        'cross-instance delivery before the outage',
      );

      for (const outage of OUTAGES_MS) {
        const droppedBefore = a.helper.getStats().bus!.droppedWhileDisconnected;
        const killedAt = Date.now();
        await redisServer.kill();
        await Bun.sleep(outage);
        expect(a.helper.getStats().bus!.droppedWhileDisconnected).toBeGreaterThan(droppedBefore);
        await redisServer.restart();
        const backAt = Date.now();
        await eventually(
          () =>
            firstArrival(onB.got, 'a', backAt) !== undefined &&
            firstArrival(onA.got, 'b', backAt) !== undefined &&
            firstArrival(onA.got, 'e', backAt) !== undefined,
          RECOVERY_BOUND_MS + 3_000,
          `delivery after a ${outage} ms outage`,
        );
        const recovery = {
          outage,
          ab: firstArrival(onB.got, 'a', backAt)! - backAt,
          ba: firstArrival(onA.got, 'b', backAt)! - backAt,
          emitter: firstArrival(onA.got, 'e', backAt)! - backAt,
        };
        recoveries.push(recovery);
        figure(`redis-recovery-ms.outage-${outage}.a-to-b`, recovery.ab);
        figure(`redis-recovery-ms.outage-${outage}.b-to-a`, recovery.ba);
        figure(`redis-recovery-ms.outage-${outage}.emitter`, recovery.emitter);
        figure(
          `redis-outage.outage-${outage}.dropped-by-a`,
          a.helper.getStats().bus!.droppedWhileDisconnected - droppedBefore,
        );
        // Let traffic settle on the recovered connections before the next outage.
        await Bun.sleep(300);
        figure(`redis-outage.outage-${outage}.killed-to-recovered-ms`, Date.now() - killedAt);
      }
    } finally {
      clearInterval(stream);
    }
    await Bun.sleep(200); // the last ticks in flight

    // send() never threw, nothing escaped as an unhandled error.
    expect(sendThrew).toBe(0);
    errors.stop();
    expect(errors.rejections).toEqual([]);
    expect(errors.exceptions).toEqual([]);

    // Local delivery was never interrupted: each instance's own client got every tick it sent, in order.
    for (const [receiver, from] of [
      [onA, 'a'],
      [onB, 'b'],
    ] as const) {
      const missing: number[] = [];
      for (let n = 0; n < seq[from]; n++) if (!receiver.got.has(`${from}:${n}`)) missing.push(n);
      expect(missing).toEqual([]);
    }

    for (const r of recoveries) {
      expect(r.ab).toBeLessThan(RECOVERY_BOUND_MS);
      expect(r.ba).toBeLessThan(RECOVERY_BOUND_MS);
      expect(r.emitter).toBeLessThan(RECOVERY_BOUND_MS);
    }
    const worst = Math.max(...recoveries.flatMap((r) => [r.ab, r.ba, r.emitter]));
    figure('redis-recovery-ms', worst);

    // What the outages cost: cross-instance ticks that never arrived (dropped, not queued),
    // and ticks that arrived late because ioredis re-sent a command that was in flight at the crash.
    const lostAB = countMissing(onB.got, 'a', seq.a);
    const lostBA = countMissing(onA.got, 'b', seq.b);
    const lostE = countMissing(onA.got, 'e', seq.e);
    figure('redis-outage.ticks-sent-per-source', seq.a);
    figure('redis-outage.lost.a-to-b', lostAB);
    figure('redis-outage.lost.b-to-a', lostBA);
    figure('redis-outage.lost.emitter', lostE);
    figure('redis-outage.emitter-rejections', emitterRejected);
    expect(lostAB).toBeGreaterThan(0); // the outage really cost messages: nothing was buffered
    expect(emitterRejected).toBeGreaterThan(0);

    // Nothing from the outage was kept to be replayed: once delivery is back, no
    // message sent while Redis was down shows up later (the only exception ioredis
    // allows is a command already written when the socket died, counted here).
    const replayed = [...onB.got.keys()].filter((key) => {
      const sent = sentAt.get(key)!;
      const arrived = onB.got.get(key)!;
      return arrived - sent > 500;
    }).length;
    figure('redis-outage.late-arrivals-a-to-b', replayed);
    figure('redis-outage.duplicates', onA.duplicates() + onB.duplicates());
    expect(replayed).toBeLessThanOrEqual(OUTAGES_MS.length * 3);

    // Both instances re-subscribed on their new connections: ws:broadcast, ws:command and their own
    // ws:instance:<id> channel, plus the three patterns each.
    spy = new Redis({ host: '127.0.0.1', port: redisServer.port, lazyConnect: true });
    await spy.connect();
    const connections = String(await spy.call('CLIENT', 'LIST'))
      .trim()
      .split('\n');
    expect(connections.filter((line) => / sub=3 psub=3 /.test(line)).length).toBe(2);
    expect(await spy.call('PUBSUB', 'NUMSUB', 'ws:broadcast')).toEqual(['ws:broadcast', 2]);
    expect(await spy.call('PUBSUB', 'NUMSUB', 'ws:command')).toEqual(['ws:command', 2]);
    // The outage was reported as warnings, never as errors thrown at callers.
    expect(loggerA.lines.every((line) => line.level !== 'error')).toBe(true);

    onA.client.close();
    onB.client.close();
  }, 40_000);
});

function countMissing(got: Map<string, number>, from: TSource, sent: number): number {
  let missing = 0;
  for (let n = 0; n < sent; n++) if (!got.has(`${from}:${n}`)) missing++;
  return missing;
}
