import { describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import {
  assertBunRuntime,
  isBunRuntime,
  RedisHelper,
  silentLogger,
  WebSocketEmitter,
  WebSocketServerHelper,
} from '../../src/index.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { acceptOkToken, eventually, recordingLogger, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

const fakeServer = { pendingWebSockets: 0, publish: () => 0 };

describe('construction', () => {
  test('an explicit null / undefined / non-helper redisConnection throws the documented message', () => {
    for (const redisConnection of [null, undefined, {}, { getClient: 'nope' }]) {
      expect(
        () =>
          new WebSocketServerHelper({
            identifier: 'x',
            server: fakeServer,
            authenticateFn: acceptOkToken,
            redisConnection: redisConnection as never,
          }),
      ).toThrow('[WebSocketServerHelper] Invalid redis connection!');
    }
    expect(() => new WebSocketEmitter({ redisConnection: null as never })).toThrow(
      '[WebSocketEmitter] Invalid redis connection!',
    );
  });

  test('a duck-typed object with getClient() is accepted', async () => {
    // A lazy ioredis client, so the duplicates the constructor makes stay unconnected.
    const client = new Redis({ port: await freePort(), lazyConnect: true });
    const helper = new WebSocketServerHelper({
      identifier: 'duck',
      server: fakeServer,
      authenticateFn: acceptOkToken,
      redisConnection: { getClient: () => client },
      logger: silentLogger,
    });
    expect(helper.getPath()).toBe('/ws');
    await helper.shutdown();
  });

  test('a getClient() that returns no ioredis client throws at construction', () => {
    expect(
      () =>
        new WebSocketServerHelper({
          identifier: 'duck',
          server: fakeServer,
          authenticateFn: acceptOkToken,
          redisConnection: { getClient: () => ({}) as never },
          logger: silentLogger,
        }),
    ).toThrow('[WebSocketServerHelper] redisConnection.getClient() did not return an ioredis client');
  });

  test.each([
    ['identifier', { identifier: '' }, 'identifier'],
    ['server', { server: {} }, 'server must be a Bun server'],
    ['authenticateFn', { authenticateFn: undefined }, 'authenticateFn must be a function'],
    ['authTimeout', { authTimeout: -1 }, 'authTimeout must be a positive number'],
    ['heartbeatInterval', { heartbeatInterval: 0 }, 'heartbeatInterval must be a positive number'],
    ['heartbeatTimeout', { heartbeatTimeout: Number.NaN }, 'heartbeatTimeout must be a positive number'],
    ['encryptedBatchLimit', { encryptedBatchLimit: 'ten' }, 'encryptedBatchLimit must be a positive number'],
    ['path', { path: 'ws' }, 'path must be a string starting with "/"'],
    ['defaultRooms', { defaultRooms: ['ws:nope'] }, 'defaultRooms must be valid room names'],
    ['validateRoomFn', { validateRoomFn: 'yes' }, 'validateRoomFn must be a function'],
  ])('misconfigured %s throws a clear message', (_name, override, message) => {
    expect(
      () =>
        new WebSocketServerHelper({
          identifier: 'x',
          server: fakeServer,
          authenticateFn: acceptOkToken,
          ...(override as object),
        } as never),
    ).toThrow(message);
  });

  test('outside Bun the runtime check refuses with a clear message', () => {
    expect(isBunRuntime()).toBe(true);
    expect(isBunRuntime({})).toBe(false);
    expect(() => assertBunRuntime('WebSocketServerHelper', {})).toThrow(
      '[WebSocketServerHelper] Bun runtime required',
    );
    expect(() => assertBunRuntime('WebSocketServerHelper')).not.toThrow();
  });

  test('getBunWebSocketHandler carries the documented Bun defaults and overrides', () => {
    const make = (serverOptions?: object) =>
      new WebSocketServerHelper({
        identifier: 'x',
        server: fakeServer,
        authenticateFn: acceptOkToken,
        serverOptions,
        logger: silentLogger,
      }).getBunWebSocketHandler();
    const handler = make();
    expect(handler).toMatchObject({
      maxPayloadLength: 131072,
      idleTimeout: 60,
      backpressureLimit: 1048576,
      sendPings: true,
      publishToSelf: false,
    });
    expect(handler.perMessageDeflate).toBeUndefined();
    expect(handler.closeOnBackpressureLimit).toBeUndefined();
    for (const fn of ['open', 'message', 'close', 'drain'] as const)
      expect(typeof handler[fn]).toBe('function');
    expect(
      make({ maxPayloadLength: 10, perMessageDeflate: true, closeOnBackpressureLimit: true, idleTimeout: 5 }),
    ).toMatchObject({
      maxPayloadLength: 10,
      perMessageDeflate: true,
      closeOnBackpressureLimit: true,
      idleTimeout: 5,
      sendPings: true,
    });
  });
});

describe('driving the helper without a network', () => {
  test('onClientConnect / onClientMessage / onClientDisconnect with a fake socket', async () => {
    const sent: string[] = [];
    const topics = new Set<string>();
    const socket = {
      data: { clientId: 'c1' },
      remoteAddress: '127.0.0.1',
      readyState: 1,
      send: (m: string) => {
        sent.push(m);
        return m.length;
      },
      subscribe: (t: string) => void topics.add(t),
      unsubscribe: (t: string) => void topics.delete(t),
      isSubscribed: (t: string) => topics.has(t),
      close: () => {},
      cork: (cb: (ws: unknown) => unknown) => cb(socket),
    };
    const helper = new WebSocketServerHelper({
      identifier: 'offline',
      server: fakeServer,
      authenticateFn: acceptOkToken,
      logger: silentLogger,
    });
    helper.onClientConnect({ clientId: 'c1', socket: socket as never });
    expect(topics.has('c1')).toBe(true);
    helper.onClientMessage({
      clientId: 'c1',
      raw: JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }),
    });
    await eventually(() => sent.length === 1);
    expect(JSON.parse(sent[0]!)).toMatchObject({ event: 'connected', data: { id: 'c1', userId: 'u1' } });
    expect([...topics].sort()).toEqual(['c1', 'ws-default', 'ws-notification', 'ws:internal:broadcast']);
    helper.onClientDisconnect({ clientId: 'c1' });
    expect(helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    helper.onClientMessage({ clientId: 'c1', raw: '{"event":"heartbeat"}' }); // unknown ids are ignored
    await helper.shutdown();
  });
});

describe('single-instance mode', () => {
  test('without redisConnection everything works locally and send() delivers locally', async () => {
    const logger = recordingLogger();
    const server = await startServer({ logger, validateRoomFn: ({ rooms }) => rooms });
    try {
      expect(logger.lines.some((l) => l.message.includes('single-instance mode'))).toBe(true);
      expect(server.helper.getStats().bus).toBeUndefined();
      const one = await TestClient.authenticated(server.url);
      const two = await TestClient.authenticated(server.url);
      one.send({ event: 'join', data: { rooms: ['solo'] } });
      await one.next('join');
      server.helper.send({ destination: 'solo', payload: { topic: 'room', data: 1 } });
      server.helper.send({ destination: two.id, payload: { topic: 'direct', data: 2 } });
      server.helper.send({ payload: { topic: 'everyone', data: 3 } });
      await one.next('room');
      await two.next('direct');
      await one.next('everyone');
      await two.next('everyone');
      await expectSilence(two, 'room', 50);
    } finally {
      await server.stop();
    }
  });
});

describe('shutdown', () => {
  test('closes clients with 1001, clears indexes and timers, quits Redis, and is idempotent', async () => {
    const redisServer = await RedisServer.start();
    const server = await startServer({ redis: { host: '127.0.0.1', port: redisServer.port } });
    try {
      const authed = await TestClient.authenticated(server.url);
      const pending = await TestClient.connect(server.url);
      await eventually(() => server.helper.getStats().authTimers === 1);
      const first = server.helper.shutdown();
      const second = server.helper.shutdown();
      expect(second).toBe(first);
      await first;
      expect((await authed.closedWithin()).code).toBe(1001);
      expect((await pending.closedWithin()).code).toBe(1001);
      expect(server.helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
      // Redis connections are gone: only the test's own helper connection may remain.
      const clientList = await server.redisHelper!.getClient().call('CLIENT', 'LIST');
      expect(String(clientList).trim().split('\n').length).toBe(1);
      // Delivery after shutdown is a no-op, never a throw.
      server.helper.send({ payload: { topic: 'late', data: 1 } });
      server.helper.sendToRoom({ room: 'ws-default', event: 'late', data: 1 });
      await expect(server.helper.configure()).rejects.toThrow('after shutdown');
    } finally {
      await server.stop();
      await redisServer.stop();
    }
  });
});

describe('Redis availability', () => {
  test('configure() against an unreachable Redis fails with the documented error within the bound', async () => {
    const redisConnection = new RedisHelper({
      name: 'unreachable',
      host: '127.0.0.1',
      port: await freePort(),
      autoConnect: false,
      logger: silentLogger,
    });
    const helper = new WebSocketServerHelper({
      identifier: 'x',
      server: fakeServer,
      authenticateFn: acceptOkToken,
      redisConnection,
      redisReadyTimeout: 300,
      logger: silentLogger,
    });
    const started = Date.now();
    await expect(helper.configure()).rejects.toThrow('Redis client did not become ready within 300ms');
    expect(Date.now() - started).toBeLessThan(2_000);
    const emitter = new WebSocketEmitter({ redisConnection, redisReadyTimeout: 300, logger: silentLogger });
    await expect(emitter.configure()).rejects.toThrow('Redis client did not become ready within 300ms');
    await helper.shutdown();
    await redisConnection.disconnect();
  });

  test('Redis dying and coming back: local delivery goes on, send() never throws, cross-instance delivery resumes', async () => {
    const redisServer = await RedisServer.start();
    const redis = { host: '127.0.0.1', port: redisServer.port };
    const a = await startServer({ redis, validateRoomFn: ({ rooms }) => rooms });
    const b = await startServer({ redis, validateRoomFn: ({ rooms }) => rooms });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const localPeer = await TestClient.authenticated(a.url);
      const remotePeer = await TestClient.authenticated(b.url);
      a.helper.send({ payload: { topic: 'before', data: 1 } });
      await remotePeer.next('before');

      await redisServer.kill();
      await Bun.sleep(100);
      expect(() => a.helper.send({ payload: { topic: 'during', data: 1 } })).not.toThrow();
      await localPeer.next('during'); // local delivery is not interrupted
      expect(a.helper.getStats().bus!.droppedWhileDisconnected).toBeGreaterThan(0);

      await redisServer.restart();
      const back = Date.now();
      let n = 0;
      // Keep sending until a message crosses again; bounded by the timeout below.
      const probe = setInterval(() => a.helper.send({ payload: { topic: 'after', data: n++ } }), 50);
      try {
        await remotePeer.next('after', () => true, 5_000);
      } finally {
        clearInterval(probe);
      }
      const recoveredIn = Date.now() - back;
      expect(recoveredIn).toBeLessThan(3_000);
      // The reverse direction (b's publisher, a's subscriber) works too.
      b.helper.send({ payload: { topic: 'reverse', data: 1 } });
      await localPeer.next('reverse');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await a.stop();
      await b.stop();
      await redisServer.stop();
    }
  });
});
