import { afterEach, describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { type IWebSocketUpgrade, RedisHelper, silentLogger, WebSocketServerHelper } from '../../src/index.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { eventually, recordingLogger } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';
import { startApp, TestApplication as TestApp, type TestApplication, withAuth } from './app-fixture.ts';

// Everything a test starts is stopped here, even when an assertion failed half-way.
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(...args: Parameters<typeof startApp>): Promise<TestApplication> {
  const app = await startApp(...args);
  cleanups.push(() => app.stop());
  return app;
}

async function connected(url: string, auth?: Record<string, unknown>): Promise<TestClient> {
  const client = await TestClient.authenticated(url, auth);
  cleanups.push(() => client.close());
  return client;
}

describe('defaults', () => {
  test('with only an authenticate handler: /ws, the default rooms, single-instance mode logged once', async () => {
    const logger = recordingLogger();
    const app = await started(withAuth(), { logger });
    const client = await connected(app.wsUrl());
    const rooms = [...app.helper.getClients({ id: client.id })!.rooms].sort();
    expect(rooms).toEqual([client.id, 'ws-default', 'ws-notification'].sort());
    const singleInstance = logger.lines.filter((line) => line.message.includes('single-instance mode'));
    expect(singleInstance).toHaveLength(1);
    expect(app.helper.getStats().bus).toBeUndefined();
    // The documented Bun defaults reach the native handler.
    expect(app.helper.getBunWebSocketHandler()).toMatchObject({
      sendPings: true,
      idleTimeout: 60,
      maxPayloadLength: 131_072,
    });
  });
});

describe('binding keys are honoured', () => {
  test('custom path, default rooms, Bun options (deep-merged) and heartbeat timing', async () => {
    const app = await started(
      withAuth({
        [WebSocketBindingKeys.SERVER_OPTIONS]: {
          identifier: 'custom',
          path: '/realtime',
          defaultRooms: ['general', 'announcements'],
          heartbeatInterval: 50,
          heartbeatTimeout: 300,
          serverOptions: { maxPayloadLength: 4_096 },
        },
      }),
    );
    expect(app.helper.identifier).toBe('custom');
    expect(app.helper.getBunWebSocketHandler()).toMatchObject({ maxPayloadLength: 4_096, idleTimeout: 60 });

    // The default path is not a WebSocket endpoint any more.
    await expect(TestClient.connect(app.wsUrl('/ws'))).rejects.toThrow('could not connect');

    const quiet = await connected(app.wsUrl('/realtime'));
    expect([...app.helper.getClients({ id: quiet.id })!.rooms].sort()).toEqual(
      [quiet.id, 'announcements', 'general'].sort(),
    );
    // Never sends a heartbeat: closed with 4002 after ~300 ms, well before the 90 s default.
    const startedAt = Date.now();
    expect((await quiet.closedWithin(3_000)).code).toBe(4002);
    expect(Date.now() - startedAt).toBeLessThan(2_000);

    // The payload limit applies: a frame above 4 KiB closes the connection (1009, message too big).
    const big = await connected(app.wsUrl('/realtime'));
    big.send({ event: 'chat', data: 'x'.repeat(5_000) });
    expect((await big.closedWithin()).code).toBe(1009);
  });

  test('every handler binding reaches the helper', async () => {
    const calls: string[] = [];
    const app = await started(
      withAuth({
        [WebSocketBindingKeys.VALIDATE_ROOM_HANDLER]: ({ rooms }: { rooms: string[] }) =>
          rooms.filter((room) => room.startsWith('public-')),
        [WebSocketBindingKeys.CLIENT_CONNECTED_HANDLER]: ({ userId }: { userId?: string }) => {
          calls.push(`connected:${userId}`);
        },
        [WebSocketBindingKeys.CLIENT_DISCONNECTED_HANDLER]: ({ userId }: { userId?: string }) => {
          calls.push(`disconnected:${userId}`);
        },
        [WebSocketBindingKeys.MESSAGE_HANDLER]: ({
          message,
        }: {
          message: { event: string; data?: unknown };
        }) => {
          calls.push(`message:${message.event}:${String(message.data)}`);
        },
      }),
    );
    const client = await connected(app.wsUrl(), { token: 'ok', user: 'ann' });
    client.send({ event: 'join', data: { rooms: ['public-a', 'secret'] } });
    expect((await client.next('join')).data).toEqual({ rooms: ['public-a'] });
    client.send({ event: 'ping-me', data: 7 });
    await eventually(() => calls.includes('message:ping-me:7'), 2_000, 'message handler');
    client.close();
    await eventually(() => calls.includes('disconnected:ann'), 2_000, 'disconnected handler');
    expect(calls).toEqual(['connected:ann', 'message:ping-me:7', 'disconnected:ann']);
  });

  test('handshake handler and outbound transformer under requireEncryption', async () => {
    const app = await started(
      withAuth({
        [WebSocketBindingKeys.SERVER_OPTIONS]: { requireEncryption: true },
        [WebSocketBindingKeys.HANDSHAKE_HANDLER]: ({ data }: { data: { publicKey?: string } }) =>
          data.publicKey ? { serverPublicKey: 'server-key', salt: 'salt' } : null,
        // A stand-in for encryption: proves the transformer runs for this client.
        [WebSocketBindingKeys.OUTBOUND_TRANSFORMER]: ({ event, data }: { event: string; data: unknown }) => ({
          event: 'encrypted',
          data: { wrapped: { event, data } },
        }),
      }),
    );
    const client = await connected(app.wsUrl(), { token: 'ok', publicKey: 'client-key' });
    expect(client.all('connected')[0]!.data).toMatchObject({ serverPublicKey: 'server-key', salt: 'salt' });
    app.helper.sendToClient({ clientId: client.id, event: 'secret', data: 42 });
    expect((await client.next('encrypted')).data).toEqual({ wrapped: { event: 'secret', data: 42 } });

    const refused = await TestClient.connect(app.wsUrl());
    refused.send({ event: 'authenticate', data: { token: 'ok' } }); // no publicKey: the handshake says no
    expect((await refused.closedWithin()).code).toBe(4004);
  });

  test('an unknown (misspelt) option is ignored with a warning; authTimeout is applied', async () => {
    const logger = recordingLogger();
    const app = await started(
      withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { authTimout: 10, authTimeout: 150 } }),
      { logger },
    );
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.message).toContain('authTimout');
    expect(warning?.message).not.toContain('authTimeout');
    // 150 ms applied: a silent client is closed with 4001 well before the 5 s default.
    const silent = await TestClient.connect(app.wsUrl());
    cleanups.push(() => silent.close());
    expect((await silent.closedWithin(2_000)).code).toBe(4001);
  });
});

describe('WEBSOCKET_INSTANCE', () => {
  test('is bound once the server listens; a service resolving it lazily can push to clients', async () => {
    const app = new TestApp(withAuth(), { logger: silentLogger });
    cleanups.push(() => app.stop());
    expect(app.isBound({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE })).toBe(false);

    // A service written before start(): it asks the container only when it needs the helper.
    const notifier = {
      notify: (text: string) =>
        app
          .get<WebSocketServerHelper>({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE })
          .send({ destination: 'ws-notification', payload: { topic: 'notice', data: { text } } }),
    };
    expect(() => notifier.notify('too early')).toThrow('Nothing is bound to "@app/websocket/instance"');

    await app.start();
    expect(app.helper).toBeInstanceOf(WebSocketServerHelper);
    const client = await connected(app.wsUrl());
    notifier.notify('hello');
    expect((await client.next('notice')).data).toEqual({ text: 'hello' });
  });
});

describe('HTTP beside the WebSocket path', () => {
  test('Hono routes are served; a plain GET on the path goes to Hono; a broken upgrade answers 500', async () => {
    const app = new TestApp(withAuth(), { logger: silentLogger });
    cleanups.push(() => app.stop());
    app.hono.get('/ws', (c) => c.text('plain GET on the WebSocket path'));
    const { url } = await app.start();

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect((await fetch(`${url}/missing`)).status).toBe(404);
    expect(await (await fetch(`${url}/ws`)).text()).toBe('plain GET on the WebSocket path');

    // A real client still upgrades on the same path.
    await connected(app.wsUrl());

    // "Upgrade: websocket" without a Sec-WebSocket-Key cannot be upgraded.
    const { port } = app.getAddress();
    const reply = await rawHttp(
      port,
      'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
    expect(reply.split('\r\n')[0]).toContain(' 500 ');
  });
});

describe('misconfiguration', () => {
  test('no authenticate handler: start() rejects before anything listens', async () => {
    const port = await freePort();
    const app = new TestApp({}, { logger: silentLogger, port });
    await expect(app.start()).rejects.toThrow(
      '[WebSocketComponent] No authenticate handler: bind a TWebSocketAuthenticateFn to WebSocketBindingKeys.AUTHENTICATE_HANDLER',
    );
    expect(() => app.getServer()).toThrow('not running');
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });

  test('an authenticate binding that is not a function is refused the same way', async () => {
    const app = new TestApp({ [WebSocketBindingKeys.AUTHENTICATE_HANDLER]: null }, { logger: silentLogger });
    await expect(app.start()).rejects.toThrow('No authenticate handler');
  });

  test('SERVER_OPTIONS bound to something other than an object is refused', async () => {
    const app = new TestApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: '/realtime' }), {
      logger: silentLogger,
    });
    await expect(app.start()).rejects.toThrow('SERVER_OPTIONS must be an object');
  });

  test('requireEncryption without a handshake handler: warning at start, clients closed with 4004', async () => {
    const logger = recordingLogger();
    const app = await started(
      withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { requireEncryption: true } }),
      {
        logger,
      },
    );
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.message).toContain('requireEncryption is on but nothing is bound to');
    expect(warning?.message).toContain('4004');

    const client = await TestClient.connect(app.wsUrl());
    cleanups.push(() => client.close());
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    expect((await client.closedWithin()).code).toBe(4004);
    expect(client.all('connected')).toHaveLength(0);
  });

  test('an invalid Redis binding throws the helper message and the server is released', async () => {
    for (const invalid of [null, {}]) {
      const port = await freePort();
      const app = new TestApp(withAuth({ [WebSocketBindingKeys.REDIS_CONNECTION]: invalid }), {
        logger: silentLogger,
        port,
      });
      await expect(app.start()).rejects.toThrow('[WebSocketServerHelper] Invalid redis connection!');
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    }
  });
});

describe('stop', () => {
  test('graceful stop closes every socket with 1001 and the port stops accepting', async () => {
    const app = await startApp(withAuth());
    const { port } = app.getAddress();
    const authenticated = await TestClient.authenticated(app.wsUrl());
    const pending = await TestClient.connect(app.wsUrl()); // never authenticates
    const helper = app.helper;

    await app.stop();
    expect((await authenticated.closedWithin()).code).toBe(1001);
    expect((await pending.closedWithin()).code).toBe(1001);
    expect(helper.getStats()).toMatchObject({ clients: 0, rooms: 0, authTimers: 0 });
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    await app.stop(); // idempotent
  });

  test('with Redis: messages cross two applications, and stop() quits the Redis connections', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const redisBinding = () =>
      new RedisHelper({
        name: 'ws',
        host: '127.0.0.1',
        port: redis.port,
        autoConnect: false,
        logger: silentLogger,
      });
    const one = await started(withAuth({ [WebSocketBindingKeys.REDIS_CONNECTION]: redisBinding() }));
    const two = await started(withAuth({ [WebSocketBindingKeys.REDIS_CONNECTION]: redisBinding() }));
    const onTwo = await connected(two.wsUrl());

    one.helper.send({ destination: 'ws-default', payload: { topic: 'across', data: 'from one' } });
    expect((await onTwo.next('across')).data).toBe('from one');

    const probe = redisBinding();
    cleanups.push(() => probe.disconnect());
    await probe.connect();
    const connections = async () =>
      String(await probe.getClient().call('CLIENT', 'LIST'))
        .trim()
        .split('\n');
    expect(await connections()).toHaveLength(5); // 2 per application + the probe
    await one.stop();
    await two.stop();
    expect(await connections()).toHaveLength(1);
    await expectSilence(onTwo, 'across', 20);
  });
});

/** Sends raw HTTP bytes and returns what the server answered first. */
async function rawHttp(port: number, request: string): Promise<string> {
  let answer = '';
  const done = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data: (_socket, chunk) => {
        answer += new TextDecoder().decode(chunk);
        if (answer.includes('\r\n\r\n')) done.resolve();
      },
      close: () => done.resolve(),
      error: () => done.resolve(),
    },
  });
  socket.write(request);
  await Promise.race([done.promise, Bun.sleep(3_000)]);
  socket.end();
  return answer;
}

describe('the upgrade request reaches authenticateFn through the component', () => {
  test('headers, cookies, query and the clientIpFn address arrive; with the default address, the peer', async () => {
    const seen: unknown[] = [];
    const authenticate = (data: Record<string, unknown>, upgrade?: IWebSocketUpgrade) => {
      seen.push({
        data,
        session: upgrade?.cookies.session,
        agent: upgrade?.headers.get('x-agent'),
        address: upgrade?.address,
        room: upgrade?.query.get('room'),
      });
      return upgrade?.cookies.session === 'abc' ? { userId: 'ada' } : null;
    };
    const app = await started({
      [WebSocketBindingKeys.AUTHENTICATE_HANDLER]: authenticate,
      [WebSocketBindingKeys.SERVER_OPTIONS]: {
        clientIpFn: ({ request }: { request: Request }) => request.headers.get('x-real-ip') ?? undefined,
      },
    });
    const client = await TestClient.attach(
      new WebSocket(`${app.wsUrl()}?room=lobby`, {
        headers: { cookie: 'session=abc', 'x-agent': 'test', 'x-real-ip': '10.1.2.3' },
      } as unknown as string[]),
    );
    client.send({ event: 'authenticate', data: {} });
    expect((await client.next('connected')).data.userId).toBe('ada');
    expect(seen).toEqual([{ data: {}, session: 'abc', agent: 'test', address: '10.1.2.3', room: 'lobby' }]);
    client.close();

    const plain = await started({ [WebSocketBindingKeys.AUTHENTICATE_HANDLER]: authenticate });
    const other = await TestClient.connect(plain.wsUrl());
    other.send({ event: 'authenticate', data: { token: 'x' } });
    expect((await other.closed).code).toBe(4003);
    expect(seen[1]).toEqual({
      data: { token: 'x' },
      session: undefined,
      agent: null,
      address: '127.0.0.1',
      room: null,
    });
  });
});
