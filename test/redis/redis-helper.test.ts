import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Cluster, Redis } from 'ioredis';
import {
  DefaultRedisHelper,
  RedisClusterHelper,
  RedisHelper,
  silentLogger,
  waitForRedisReady,
} from '../../src/index.ts';
import { freePort, sharedRedis } from '../support/redis-server.ts';

let redis: Awaited<ReturnType<typeof sharedRedis>>;
beforeAll(async () => {
  redis = await sharedRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('RedisHelper', () => {
  test('connects and fires onInitialized / onConnected / onReady', async () => {
    const seen: string[] = [];
    const helper = new RedisHelper({
      name: 'cb',
      host: redis.host,
      port: redis.port,
      onInitialized: ({ name }) => seen.push(`init:${name}`),
      onConnected: () => seen.push('connected'),
      onReady: () => seen.push('ready'),
    });
    await helper.connect();
    expect(await helper.getClient().ping()).toBe('PONG');
    expect(seen).toEqual(['init:cb', 'connected', 'ready']);
    await helper.disconnect();
    expect(helper.getClient().status).toBe('end');
  });

  test('lazy by default (and with autoConnect: false): waits for the first connect()', async () => {
    for (const autoConnect of [undefined, false]) {
      const helper = new RedisHelper({ name: 'lazy', host: redis.host, port: redis.port, autoConnect });
      await Bun.sleep(30);
      expect(helper.getClient().status).toBe('wait');
      await helper.connect();
      expect(helper.getClient().status).toBe('ready');
      await helper.disconnect();
    }
  });

  test('autoConnect: true connects in the constructor', async () => {
    const helper = new RedisHelper({ name: 'eager', host: redis.host, port: redis.port, autoConnect: true });
    await waitForRedisReady(helper.getClient(), 2_000);
    expect(helper.getClient().status).toBe('ready');
    await helper.disconnect();
  });

  test('selects the database and reports errors through onError', async () => {
    const helper = new RedisHelper({ name: 'db', host: redis.host, port: redis.port, database: 3 });
    await helper.connect();
    await helper.getClient().set('roomcast:db-test', '1');
    const other = new Redis({ host: redis.host, port: redis.port, db: 3 });
    expect(await other.get('roomcast:db-test')).toBe('1');
    await other.quit();
    await helper.disconnect();

    const errors: unknown[] = [];
    const broken = new RedisHelper({
      name: 'broken',
      host: '127.0.0.1',
      port: await freePort(),
      maxRetry: 1,
      onError: ({ error }) => errors.push(error),
    });
    await expect(broken.connect(300)).rejects.toThrow('Redis client did not become ready within 300ms');
    expect(errors.length).toBeGreaterThan(0);
    await broken.disconnect();
  });

  test('misconfiguration throws clearly', () => {
    expect(() => new RedisHelper({ name: 'x', host: undefined as never, port: 1 })).toThrow('host');
    expect(() => new RedisClusterHelper({ name: 'x', nodes: [] })).toThrow('nodes');
    expect(() => new DefaultRedisHelper({ name: 'x', client: undefined as never })).toThrow('client');
  });
});

describe('RedisClusterHelper', () => {
  test('builds an ioredis Cluster client with the given nodes and passwords', async () => {
    const helper = new RedisClusterHelper({
      name: 'cluster',
      nodes: [{ host: '127.0.0.1', port: await freePort(), password: 'pw' }],
      clusterOptions: { lazyConnect: true },
      logger: silentLogger,
    });
    const client = helper.getClient();
    expect(client).toBeInstanceOf(Cluster);
    expect(client.status).toBe('wait');
    expect(
      (client as unknown as { options: { redisOptions: { password: string } } }).options.redisOptions
        .password,
    ).toBe('pw');
    await helper.disconnect();
  });
});

describe('RedisClusterHelper defaults', () => {
  test('refreshes the slot map every second unless told otherwise; duplicates keep the routing class', async () => {
    const nodes = [{ host: '127.0.0.1', port: await freePort() }];
    const helper = new RedisClusterHelper({ name: 'c', nodes, clusterOptions: { lazyConnect: true } });
    const client = helper.getClient() as Cluster;
    expect(client.options.slotsRefreshInterval).toBe(1_000);
    const copy = client.duplicate();
    expect(copy.constructor).toBe(client.constructor);
    expect(copy.options.slotsRefreshInterval).toBe(1_000);
    expect(copy.status).toBe('wait');
    const custom = new RedisClusterHelper({
      name: 'c2',
      nodes,
      clusterOptions: { lazyConnect: true, slotsRefreshInterval: 5_000 },
    });
    expect((custom.getClient() as Cluster).options.slotsRefreshInterval).toBe(5_000);
    copy.disconnect();
    await helper.disconnect();
    await custom.disconnect();
  });
});

describe('waitForRedisReady', () => {
  test('resolves immediately for a ready client and bounds the wait otherwise', async () => {
    const ready = new Redis({ host: redis.host, port: redis.port });
    await waitForRedisReady(ready, 2_000);
    await waitForRedisReady(ready, 1);
    await ready.quit();

    const unreachable = new Redis({
      host: '127.0.0.1',
      port: await freePort(),
      lazyConnect: true,
      retryStrategy: () => 50,
    });
    unreachable.on('error', () => {});
    const started = Date.now();
    await expect(waitForRedisReady(unreachable, 250)).rejects.toThrow(
      'Redis client did not become ready within 250ms',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    unreachable.disconnect();
  });
});
