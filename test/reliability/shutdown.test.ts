import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import type { AnyRecord } from '../../src/common/types.ts';
import { figure } from '../support/figures.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * shutdown() under load with Redis down: thousands of real WebSocket clients,
 * some not yet authenticated, some stuck in a hung authenticateFn.
 */

const WANTED_CLIENTS = 2_000;
const SHUTDOWN_BOUND_MS = 2_000;
const ALL_CLOSED_BOUND_MS = 5_000;
/**
 * After shutdown() the process must be free to exit. ioredis keeps one timer
 * per connection it is told to drop while reconnecting (its `disconnectTimeout`,
 * 2 000 ms by default); nothing else may hold the process.
 */
const EXIT_BOUND_MS = 3_500;

let redisServer: RedisServer;
beforeAll(async () => {
  redisServer = await RedisServer.start();
});
afterAll(async () => {
  await redisServer.stop();
});

/** How many clients this machine's open-file limit allows (each uses 2 descriptors in this process). */
async function clientBudget(): Promise<number> {
  const out = await new Response(Bun.spawn(['sh', '-c', 'ulimit -n'], { stdout: 'pipe' }).stdout).text();
  const limit = out.trim() === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out.trim());
  figure('shutdown.ulimit-n', out.trim());
  return Math.max(100, Math.min(WANTED_CLIENTS, Math.floor((limit - 300) / 2)));
}

describe('shutdown under stress', () => {
  test('with thousands of clients and Redis down: bounded, every client closed with 1001, nothing left, no reconnect', async () => {
    const count = await clientBudget();
    const server = await startServer({
      redis: { host: '127.0.0.1', port: redisServer.port },
      heartbeatInterval: 1_000,
      authenticateFn: (data: AnyRecord) => (data.token === 'hang' ? new Promise(() => {}) : { userId: 'u' }),
    });
    const helper = server.helper;
    const authenticated: TestClient[] = [];
    for (let i = 0; i < count; i += 100) {
      const batch = Array.from({ length: Math.min(100, count - i) }, () =>
        TestClient.authenticated(server.url),
      );
      authenticated.push(...(await Promise.all(batch)));
    }
    const unauthenticated = await Promise.all(
      Array.from({ length: 20 }, () => TestClient.connect(server.url)),
    );
    const hung = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(server.url)));
    for (const c of hung) c.send({ event: 'authenticate', data: { token: 'hang' } });
    const everyone = [...authenticated, ...unauthenticated, ...hung];
    await eventually(() => helper.getStats().clients === everyone.length, 5_000, 'all clients registered');
    expect(helper.getStats().authTimers).toBe(25);

    await redisServer.kill();
    await Bun.sleep(200); // the bus notices and starts reconnecting

    const started = performance.now();
    await helper.shutdown();
    const shutdownMs = performance.now() - started;
    await Promise.race([
      Promise.all(everyone.map((c) => c.closed)),
      Bun.sleep(ALL_CLOSED_BOUND_MS).then(() => {
        throw new Error('not every client was closed in time');
      }),
    ]);
    const allClosedMs = performance.now() - started;

    figure('shutdown.clients', everyone.length);
    figure('shutdown.ms', shutdownMs);
    figure('shutdown.all-closed-ms', allClosedMs);
    expect(shutdownMs).toBeLessThan(SHUTDOWN_BOUND_MS);
    expect(allClosedMs).toBeLessThan(ALL_CLOSED_BOUND_MS);
    const codes = new Set(everyone.map((c) => c.closeInfo?.code));
    expect([...codes]).toEqual([1001]);
    expect(helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    // The heartbeat sweep is stopped (private state of the helper's parts, read for this check only).
    const parts = Reflect.get(helper, 'node') as { heartbeat: { running: boolean } };
    expect(parts.heartbeat.running).toBe(false);

    // The Redis connections are really finished: when Redis comes back on the same
    // port, none of them reconnects (the retry delay is capped at 1 s; wait past it).
    await redisServer.restart();
    await Bun.sleep(1_500);
    const spy = new Redis({ host: '127.0.0.1', port: redisServer.port, lazyConnect: true });
    await spy.connect();
    const connections = String(await spy.call('CLIENT', 'LIST'))
      .trim()
      .split('\n').length;
    spy.disconnect();
    expect(connections).toBe(1); // the spy itself
    figure('shutdown.redis-reconnects-after-shutdown', connections - 1);

    server.server.stop(true);
    await server.redisHelper?.disconnect();
  }, 60_000);

  test('after shutdown() the process exits by itself: no timer or socket keeps it alive', async () => {
    const child = Bun.spawn([process.execPath, `${import.meta.dir}/fixtures/shutdown-child.ts`], {
      env: { ...process.env, REDIS_PORT: String(redisServer.port), CHILD_CLIENTS: '200' },
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'inherit',
    });
    const lines = readLines(child.stdout);
    try {
      expect(await lines.next(20_000)).toBe('ready');
      await redisServer.kill();
      await Bun.sleep(200);
      child.stdin.write('shutdown\n');
      await child.stdin.flush();
      expect(await lines.next(10_000)).toMatch(/^done \d+$/);
      const doneAt = Date.now();
      const exited = await Promise.race([child.exited, Bun.sleep(15_000).then(() => 'still running')]);
      const exitMs = Date.now() - doneAt;
      figure('shutdown.process-exit-after-shutdown-ms', exitMs);
      expect(exited).toBe(0);
      expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
    } finally {
      child.kill('SIGKILL');
      await redisServer.restart();
    }
  }, 60_000);
});

/** Line reader over a child's stdout, with a bounded wait per line. */
function readLines(stream: ReadableStream<Uint8Array>): { next: (timeoutMs: number) => Promise<string> } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    async next(timeoutMs: number): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const newline = buffered.indexOf('\n');
        if (newline !== -1) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.trim().length > 0) return line.trim();
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no line from the child in time');
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<{ done: true; value: undefined }>((resolve) => {
            timer = setTimeout(() => resolve({ done: true, value: undefined }), left);
          }),
        ]).finally(() => clearTimeout(timer));
        if (chunk.done) {
          if (Date.now() >= deadline) throw new Error('no line from the child in time');
          throw new Error(`child stdout ended; last output: ${buffered}`);
        }
        buffered += decoder.decode(chunk.value, { stream: true });
      }
    },
  };
}
