import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { RedisHelper, silentLogger, WebSocketEmitter, WebSocketServerHelper } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { recordingLogger, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

// Its own redis-server: the assertions count every connection and subscription on it.
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

describe('Redis footprint', () => {
  test('the server helper uses two duplicated connections and subscribes ws:broadcast plus three patterns', async () => {
    // RedisHelper with autoConnect: false is never connected itself: only its duplicates are.
    const server = await startServer({ redis: { host: '127.0.0.1', port: redisServer.port } });
    try {
      expect(await connectionCount()).toBe(2);
      expect(await spy.call('PUBSUB', 'NUMSUB', 'ws:broadcast')).toEqual(['ws:broadcast', 1]);
      expect(await spy.call('PUBSUB', 'NUMPAT')).toBe(3);
    } finally {
      await server.stop();
    }
    expect(await connectionCount()).toBe(0);
    expect(await spy.call('PUBSUB', 'NUMPAT')).toBe(0);
  });

  test("the README's quick start shape (a plain RedisHelper, no autoConnect) holds exactly two connections", async () => {
    const server = Bun.serve<{ clientId: string }>({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => new Response('starting', { status: 503 }),
      websocket: { message() {} },
    });
    const ws = new WebSocketServerHelper({
      identifier: 'readme',
      server,
      redisConnection: new RedisHelper({ name: 'ws', host: '127.0.0.1', port: redisServer.port }),
      authenticateFn: () => ({ userId: 'u' }),
      logger: silentLogger,
    });
    try {
      await ws.configure();
      await Bun.sleep(50); // an eager client of the RedisHelper itself would be connected by now
      expect(await connectionCount()).toBe(2);
    } finally {
      await ws.shutdown();
      server.stop(true);
    }
    expect(await connectionCount()).toBe(0);
  });

  test('the emitter uses exactly one duplicated connection and subscribes nothing', async () => {
    const redis = new RedisHelper({
      name: 'e',
      host: '127.0.0.1',
      port: redisServer.port,
      autoConnect: false,
      logger: silentLogger,
    });
    const emitter = new WebSocketEmitter({ redisConnection: redis, logger: silentLogger });
    await emitter.configure();
    expect(await connectionCount()).toBe(1);
    expect(await spy.call('PUBSUB', 'NUMPAT')).toBe(0);
    await emitter.shutdown();
    expect(await connectionCount()).toBe(0);
    await expect(emitter.broadcast({ event: 'e', data: 1 })).rejects.toThrow('not configured');
  });

  test('doLog writes one info line for that emission only', async () => {
    const logger = recordingLogger();
    const server = await startServer({ logger });
    try {
      const client = await TestClient.authenticated(server.url);
      const before = logger.lines.length;
      server.helper.sendToClient({ clientId: client.id, event: 'quiet', data: 1 });
      server.helper.send({ destination: client.id, payload: { topic: 'quiet', data: 1 } });
      expect(logger.lines.length).toBe(before);
      server.helper.sendToClient({ clientId: client.id, event: 'loud', data: 1, doLog: true });
      server.helper.send({ destination: client.id, payload: { topic: 'loud', data: 1 }, doLog: true });
      expect(logger.lines.slice(before).map((l) => l.level)).toEqual(['info', 'info']);
      client.close();
    } finally {
      await server.stop();
    }
  });
});
