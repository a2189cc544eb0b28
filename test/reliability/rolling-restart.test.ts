// A rolling restart of two instances behind a readiness-checking balancer:
// each old instance is replaced by a new one and drained with SIGTERM; the SDK
// clients are closed with 1012, reconnect (with jitter) through the balancer to
// a ready instance, re-join their room, and at the end every one of them is
// connected and receives a message published through Redis.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { createClient, type RoomcastClient } from '../../src/client/index.ts';
import { RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually } from '../support/server.ts';
import { TcpBalancer } from '../support/tcp-balancer.ts';

const CLIENTS = 20;
const DRAIN_WINDOW = 800;

let redis: RedisServer;
const children = new Set<Subprocess>();
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redis.stop();
});

async function startInstance(): Promise<{ port: number; proc: Subprocess<'ignore', 'pipe', 'pipe'> }> {
  const proc = Bun.spawn(
    [process.execPath, 'test/core/fixtures/drain-app.ts', String(redis.port), String(DRAIN_WINDOW)],
    { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' },
  );
  children.add(proc);
  const reader = proc.stdout.getReader();
  let text = '';
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const match = /PORT=(\d+)/.exec(text);
    if (match) {
      reader.releaseLock();
      return { port: Number(match[1]), proc };
    }
  }
  throw new Error(`instance did not start: ${text}${await new Response(proc.stderr).text()}`);
}

async function drain(instance: { proc: Subprocess }): Promise<number> {
  instance.proc.kill('SIGTERM');
  const code = await instance.proc.exited;
  children.delete(instance.proc);
  return code;
}

test('rolling restart of two instances: every client is moved across and none is left disconnected', async () => {
  const balancer = new TcpBalancer();
  const emitterRedis = new RedisHelper({
    name: 'rolling-emitter',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  const clients: RoomcastClient[] = [];
  const restartCloses = new Map<RoomcastClient, number>();
  try {
    const a = await startInstance();
    const b = await startInstance();
    balancer.add(a.port);
    balancer.add(b.port);
    await emitter.configure();

    for (let i = 0; i < CLIENTS; i++) {
      const client = createClient(`ws://127.0.0.1:${balancer.port}/ws`, {
        auth: () => ({ token: 'ok' }),
        reconnect: { initialDelay: 100, maxDelay: 1_000, jitter: 0.5 },
        onStateChange: ({ close }) => {
          if (close?.code === 1012) restartCloses.set(client, (restartCloses.get(client) ?? 0) + 1);
        },
      });
      clients.push(client);
    }
    await Promise.all(clients.map((client) => client.ready));
    await Promise.all(clients.map((client) => client.join(['lobby'])));
    // The balancer spread them over both old instances.
    expect(new Set(balancer.routed)).toEqual(new Set([a.port, b.port]));

    // Replace A: start A', then drain A. Its clients move to A' or B.
    const a2 = await startInstance();
    balancer.add(a2.port);
    expect(await drain(a)).toBe(0);
    balancer.remove(a.port);
    // Replace B the same way: its clients (and any that went to B) move to A' or B'.
    const b2 = await startInstance();
    balancer.add(b2.port);
    expect(await drain(b)).toBe(0);
    balancer.remove(b.port);

    await eventually(
      () => clients.every((client) => client.state === 'connected' && client.joinedRooms.has('lobby')),
      10_000,
      'every client to be connected (and in its room) again',
    );
    // Every client was on A or B, so each was drained at least once, with 1012.
    expect(clients.filter((client) => (restartCloses.get(client) ?? 0) > 0)).toHaveLength(CLIENTS);

    // After the restart all of them are reachable through Redis, wherever they landed.
    const received = clients.map(
      (client) => new Promise<unknown>((resolve) => client.once('after-restart', resolve)),
    );
    // Re-joins are confirmed per client; publish once every instance has them.
    await Bun.sleep(100);
    await emitter.toRoom({ room: 'lobby', event: 'after-restart', data: { ok: true } });
    const results = await Promise.race([
      Promise.all(received),
      Bun.sleep(5_000).then(() => 'timed out' as const),
    ]);
    expect(results).toEqual(Array.from({ length: CLIENTS }, () => ({ ok: true })));
  } finally {
    for (const client of clients) client.close();
    await emitter.shutdown();
    balancer.stop();
  }
}, 60_000);
