import { heapStats } from 'bun:jsc';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { figure, MB, rssAfterGc } from '../support/figures.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';

/**
 * Connection churn against a real server: each cycle opens a WebSocket,
 * authenticates, joins a room, waits for the answer and closes. Afterwards
 * every index must be empty again, no auth timer may be left, and the process
 * must not keep growing (after a full GC) beyond the documented bound.
 *
 * The resident set is read after two equal batches. The allocator may still
 * be taking pages during the first one (more so when the whole suite has run
 * in this process before), but a leak costs the same in every batch, so the
 * bound applies to the second batch's growth.
 */

const CYCLES = 20_000;
const BATCH = CYCLES / 2;
const WARM_UP_CYCLES = 2_000;
const CONCURRENCY = 50;
/** 10 MB over 10,000 cycles: 1 KB a cycle, a quarter of one connection's state. */
const RSS_BOUND = 10 * MB;
/** Ceiling on the whole run, so a stall fails the test instead of hanging CI. */
const RUN_BOUND_MS = 90_000;

let server: ITestServer;
let connectedFnCalls = 0;
let disconnectedFnCalls = 0;

beforeAll(async () => {
  server = await startServer({
    validateRoomFn: ({ rooms }) => rooms,
    clientConnectedFn: () => {
      connectedFnCalls++;
    },
    clientDisconnectedFn: () => {
      disconnectedFnCalls++;
    },
  });
});
afterAll(async () => {
  await server.stop();
});

/** One connect → authenticate → join → close cycle; resolves once the socket is closed. */
function cycle(url: string, n: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`cycle ${n} stalled`));
    }, 10_000);
    ws.addEventListener('open', () =>
      ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok', user: `user-${n % 1_000}` } })),
    );
    ws.addEventListener('message', (e) => {
      const text = String(e.data);
      if (text.startsWith('{"event":"connected"')) {
        ws.send(JSON.stringify({ event: 'join', data: { rooms: [`room-${n % 200}`, `solo-${n}`] } }));
      } else if (text.startsWith('{"event":"join"')) {
        ws.close();
      }
    });
    ws.addEventListener('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.addEventListener('error', () => {
      clearTimeout(timer);
      reject(new Error(`cycle ${n} failed`));
    });
  });
}

/** `count` cycles, `CONCURRENCY` at a time, numbered from `first`. */
async function churn(first: number, count: number, deadline: number): Promise<void> {
  let next = first;
  const end = first + count;
  const lane = async (): Promise<void> => {
    while (next < end) {
      if (Date.now() > deadline) throw new Error(`churn exceeded its time bound at cycle ${next}`);
      await cycle(server.url, next++);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
}

async function settledToZero(): Promise<void> {
  await eventually(
    () => {
      const s = server.helper.getStats();
      return s.clients === 0 && s.users === 0 && s.rooms === 0 && s.authTimers === 0;
    },
    5_000,
    'indexes and timers back to zero',
  );
}

describe('connection churn', () => {
  test(
    `${CYCLES} connect → authenticate → join → disconnect cycles leave nothing behind`,
    async () => {
      const deadline = Date.now() + RUN_BOUND_MS;
      await churn(0, WARM_UP_CYCLES, deadline);
      await settledToZero();
      const rssBefore = rssAfterGc();
      const objectsBefore = heapStats().objectCount;

      const started = performance.now();
      await churn(WARM_UP_CYCLES, BATCH, deadline);
      await settledToZero();
      const rssBetween = rssAfterGc();
      await churn(WARM_UP_CYCLES + BATCH, BATCH, deadline);
      const elapsed = performance.now() - started;
      await settledToZero();
      const rssAfter = rssAfterGc();
      const firstBatchGrowth = rssBetween - rssBefore;
      const rssGrowth = rssAfter - rssBetween;
      const objectGrowth = heapStats().objectCount - objectsBefore;

      figure('churn.cycles', CYCLES);
      figure('churn.concurrency', CONCURRENCY);
      figure('churn.duration-ms', elapsed);
      figure('churn.cycles-per-second', Math.round((CYCLES / elapsed) * 1_000));
      figure('churn.rss-growth-first-batch-mb', firstBatchGrowth / MB);
      figure('churn.rss-growth-mb', rssGrowth / MB);
      figure('churn.js-heap-object-growth', objectGrowth);

      expect(server.helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
      expect(server.helper.getClients().size).toBe(0);
      expect(server.helper.getClientsByRoom({ room: 'room-1' })).toEqual([]);
      expect(server.helper.getClientsByUser({ userId: 'user-1' })).toEqual([]);
      // Every admitted client was announced once and said goodbye once.
      expect(connectedFnCalls).toBe(WARM_UP_CYCLES + CYCLES);
      expect(disconnectedFnCalls).toBe(WARM_UP_CYCLES + CYCLES);
      expect(rssGrowth).toBeLessThan(RSS_BOUND);
      // A finer leak detector than RSS: one object kept per cycle would add CYCLES live objects.
      expect(objectGrowth).toBeLessThan(CYCLES / 10);
    },
    RUN_BOUND_MS + 15_000,
  );
});
