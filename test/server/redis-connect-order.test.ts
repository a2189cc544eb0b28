// The order the spec gives for Redis: the constructors duplicate the connection
// (two for the server helper, one for the emitter) and configure() connects the
// duplicates when they are still in ioredis' `wait` status (lazyConnect). With a
// lazy RedisHelper nothing reaches Redis before configure().
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { RedisHelper, silentLogger, WebSocketEmitter, WebSocketServerHelper } from '../../src/index.ts';
import type { TRedisClient } from '../../src/redis/wait-ready.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { acceptOkToken } from '../support/server.ts';

let redisServer: RedisServer;
let spy: Redis;
beforeAll(async () => {
  redisServer = await RedisServer.start();
  spy = new Redis({ host: '127.0.0.1', port: redisServer.port });
});
afterAll(async () => {
  await spy.quit();
  await redisServer.stop();
});

async function connectionCount(): Promise<number> {
  const list = String(await spy.call('CLIENT', 'LIST'));
  return list.trim().split('\n').length - 1; // minus the spy itself
}

/** A RedisHelper whose base client records every duplicate made from it. */
function recordingRedis(port: number, autoConnect = false): { redis: RedisHelper; made: TRedisClient[] } {
  const redis = new RedisHelper({
    name: 'order',
    host: '127.0.0.1',
    port,
    autoConnect,
    logger: silentLogger,
  });
  const base = redis.getClient();
  const duplicate = base.duplicate.bind(base) as (...args: unknown[]) => TRedisClient;
  const made: TRedisClient[] = [];
  base.duplicate = ((...args: unknown[]) => {
    const copy = duplicate(...args);
    made.push(copy);
    return copy;
  }) as typeof base.duplicate;
  return { redis, made };
}

const bunServer = () =>
  Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('x'), websocket: { message() {} } });

describe('server helper', () => {
  test('the constructor makes both duplicates (left in wait); configure() connects those same two', async () => {
    const { redis, made } = recordingRedis(redisServer.port);
    const server = bunServer();
    const helper = new WebSocketServerHelper({
      identifier: 'order',
      server,
      redisConnection: redis,
      authenticateFn: acceptOkToken,
      logger: silentLogger,
    });
    try {
      expect(made.map((client) => client.status)).toEqual(['wait', 'wait']);
      await Bun.sleep(50);
      expect(await connectionCount()).toBe(0); // lazyConnect: nothing before configure()

      await helper.configure();
      expect(made).toHaveLength(2); // configure() used the constructor's duplicates
      expect(made.map((client) => client.status)).toEqual(['ready', 'ready']);
      expect(await connectionCount()).toBe(2);
    } finally {
      await helper.shutdown();
      server.stop(true);
    }
    expect(await connectionCount()).toBe(0);
  });

  test('a configure() that timed out can be retried: it duplicates afresh and connects', async () => {
    const port = await freePort(); // nothing listens there until the retry
    const { redis, made } = recordingRedis(port);
    const server = bunServer();
    const helper = new WebSocketServerHelper({
      identifier: 'order-retry',
      server,
      redisConnection: redis,
      authenticateFn: acceptOkToken,
      logger: silentLogger,
      redisReadyTimeout: 300,
    });
    try {
      await expect(helper.configure()).rejects.toThrow('Redis client did not become ready within 300ms');
      const restarted = await RedisServer.start(port);
      try {
        await helper.configure();
        expect(made).toHaveLength(4);
        expect(made.slice(2).map((client) => client.status)).toEqual(['ready', 'ready']);
      } finally {
        await helper.shutdown();
        await restarted.stop();
      }
    } finally {
      server.stop(true);
    }
  });

  test('a helper shut down without configure() closes its duplicates', async () => {
    const { redis, made } = recordingRedis(redisServer.port, true); // not lazy: they connect at once
    const server = bunServer();
    const helper = new WebSocketServerHelper({
      identifier: 'order-eager',
      server,
      redisConnection: redis,
      authenticateFn: acceptOkToken,
      logger: silentLogger,
    });
    expect(made).toHaveLength(2);
    await helper.shutdown();
    server.stop(true);
    await redis.disconnect();
    expect(made.map((client) => client.status)).toEqual(['end', 'end']);
    const deadline = Date.now() + 2_000;
    while ((await connectionCount()) > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(await connectionCount()).toBe(0);
  });
});

describe('emitter', () => {
  test('the constructor makes its one duplicate (in wait); configure() connects it; shutdown closes it', async () => {
    const { redis, made } = recordingRedis(redisServer.port);
    const emitter = new WebSocketEmitter({ redisConnection: redis, logger: silentLogger });
    expect(made.map((client) => client.status)).toEqual(['wait']);
    await Bun.sleep(50);
    expect(await connectionCount()).toBe(0);
    await emitter.configure();
    expect(made).toHaveLength(1);
    expect(made[0]!.status).toBe('ready');
    expect(await connectionCount()).toBe(1);
    await emitter.shutdown();
    expect(await connectionCount()).toBe(0);

    // Configured again after a shutdown: a fresh duplicate.
    await emitter.configure();
    expect(made).toHaveLength(2);
    await emitter.shutdown();
  });

  test('an emitter shut down without configure() closes its duplicate', async () => {
    const { redis, made } = recordingRedis(redisServer.port);
    const emitter = new WebSocketEmitter({ redisConnection: redis, logger: silentLogger });
    await emitter.shutdown();
    expect(made[0]!.status).toBe('end');
  });
});
