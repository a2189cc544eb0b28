import { afterEach, describe, expect, test } from 'bun:test';
import {
  ECDH,
  type IWebSocketServerOptions,
  silentLogger,
  WebSocketClientStates,
  WebSocketServerHelper,
} from '../../src/index.ts';
import { connectedFrame, isoClock } from '../../src/server/session-manager.ts';
import { encodeFrame } from '../../src/utils/json.ts';
import { FakeServer, FakeSocket } from '../support/fake-socket.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import {
  eventually,
  type ITestServer,
  recordingLogger,
  startServer,
  type TTestServerOptions,
} from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

let server: ITestServer | undefined;
const clients: TestClient[] = [];

async function serve(opts: TTestServerOptions = {}): Promise<ITestServer> {
  server = await startServer(opts);
  return server;
}
async function connect(url: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.stop();
  server = undefined;
});

describe('authentication', () => {
  test('success: connected carries id, userId and time; user index, default rooms and own room are set', async () => {
    const connectedCalls: unknown[] = [];
    const { url, helper } = await serve({
      clientConnectedFn: (opts) => {
        connectedCalls.push(opts);
      },
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok', user: 'alice' } });
    const connected = await client.next('connected');
    const { id, userId, time } = connected.data;
    expect(typeof id).toBe('string');
    expect(userId).toBe('alice');
    expect(Number.isNaN(Date.parse(time))).toBe(false);
    expect(connected.data.serverPublicKey).toBeUndefined();

    const tracked = helper.getClients({ id })!;
    expect(tracked.state).toBe(WebSocketClientStates.AUTHENTICATED);
    expect(tracked.metadata).toEqual({ role: 'tester' });
    expect([...tracked.rooms].sort()).toEqual([id, 'ws-default', 'ws-notification'].sort());
    expect(helper.getClientsByUser({ userId: 'alice' }).map((c) => c.id)).toEqual([id]);
    expect(helper.getClientsByRoom({ room: 'ws-default' }).map((c) => c.id)).toEqual([id]);
    await eventually(() => connectedCalls.length === 1);
    expect(connectedCalls[0]).toEqual({ clientId: id, userId: 'alice', metadata: { role: 'tester' } });
  });

  test('the connected frame written as text is byte for byte what encodeFrame gives', () => {
    const time = new Date(0).toISOString();
    const ids = ['8f1c-uuid', 'quote"back\\slash', 'line\nbreak', 'ünï\u2028code', ''];
    for (const id of ids) {
      for (const userId of [undefined, 'ada', 'u"1', '']) {
        for (const requestId of [undefined, 'r1', 'r"2']) {
          expect(connectedFrame(id, userId, time, requestId)).toBe(
            encodeFrame('connected', { id, userId, time }, requestId),
          );
          const limits = { maxPendingRequests: 32, messagesPerSecond: 100 };
          expect(connectedFrame(id, userId, time, requestId, JSON.stringify(limits))).toBe(
            encodeFrame('connected', { id, userId, time, limits }, requestId),
          );
        }
      }
    }
  });

  test('the connected time is what toISOString gives, for every millisecond and second', () => {
    let now = 0;
    const clock = isoClock(() => now);
    const times = [
      0, 5, 50, 999, 1000, 1_001, 1_796_165_999_999, 1_796_166_000_000, 253_402_300_799_999,
      253_402_300_800_000,
    ];
    for (let t = 1_796_165_000_000; t < 1_796_165_003_000; t += 7) times.push(t);
    for (const t of [...times, ...times.reverse()]) {
      now = t;
      expect(clock()).toBe(new Date(t).toISOString());
      expect(clock()).toBe(new Date(t).toISOString()); // the same millisecond again
    }
  });

  test('clientConnectedFn runs after the connected event reached the client', async () => {
    let sawConnectedFirst = false;
    const { url, helper } = await serve({
      clientConnectedFn: ({ clientId }) => {
        helper.sendToClient({ clientId, event: 'welcome', data: 1 });
      },
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('welcome');
    sawConnectedFirst = client.frames[0]?.event === 'connected';
    expect(sawConnectedFirst).toBe(true);
  });

  test('custom defaultRooms replace the documented defaults', async () => {
    const { url, helper } = await serve({ defaultRooms: ['general'] });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    const { data } = await client.next('connected');
    expect([...helper.getClients({ id: data.id })!.rooms].sort()).toEqual([data.id, 'general'].sort());
  });

  test.each([
    ['null', () => null],
    ['false', () => false],
    ['a rejected promise', async () => Promise.reject(new Error('db down'))],
    [
      'a throw',
      () => {
        throw new Error('bad token');
      },
    ],
  ])('authenticateFn returning %s closes with 4003 after an error event', async (_name, authenticateFn) => {
    const logger = recordingLogger();
    const disconnected: unknown[] = [];
    const { url, helper } = await serve({
      authenticateFn: authenticateFn as never,
      logger,
      clientDisconnectedFn: (o) => {
        disconnected.push(o);
      },
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'nope' } });
    const error = await client.next('error');
    expect(error.data.message).toBe('Authentication failed');
    expect((await client.closedWithin()).code).toBe(4003);
    await eventually(() => helper.getStats().clients === 0);
    expect(helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    expect(disconnected).toEqual([]); // never authenticated, so no disconnect callback
  });

  test('no authenticate within authTimeout closes with 4001', async () => {
    const { url } = await serve({ authTimeout: 150 });
    const client = await connect(url);
    const started = Date.now();
    const closed = await client.closedWithin(2_000);
    expect(closed.code).toBe(4001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  test('heartbeats before authentication do not extend authTimeout', async () => {
    const { url } = await serve({ authTimeout: 200 });
    const client = await connect(url);
    const beat = setInterval(() => client.send({ event: 'heartbeat' }), 40);
    try {
      expect((await client.closedWithin(2_000)).code).toBe(4001);
    } finally {
      clearInterval(beat);
    }
  });

  test('a hung authenticateFn is bounded at authTimeout * 3 (4001)', async () => {
    const { url, helper } = await serve({ authTimeout: 100, authenticateFn: () => new Promise(() => {}) });
    const client = await connect(url);
    const started = Date.now();
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await Bun.sleep(150); // past authTimeout: still waiting, because auth is in progress
    expect(client.closeInfo).toBeUndefined();
    const closed = await client.closedWithin(2_000);
    expect(closed.code).toBe(4001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    await eventually(() => helper.getStats().clients === 0);
    expect(helper.getStats().authTimers).toBe(0);
  });

  test('a client closing while authenticateFn is pending leaves nothing behind', async () => {
    let release!: (v: { userId: string }) => void;
    let called = false;
    const connectedCalls: unknown[] = [];
    const { url, helper } = await serve({
      authenticateFn: () => {
        called = true;
        return new Promise((resolve) => {
          release = resolve;
        });
      },
      clientConnectedFn: (o) => {
        connectedCalls.push(o);
      },
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await eventually(() => called);
    client.close();
    await eventually(() => helper.getStats().clients === 0);
    release({ userId: 'late' });
    await Bun.sleep(50);
    expect(helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    expect(connectedCalls).toEqual([]);
    expect(helper.getClientsByUser({ userId: 'late' })).toEqual([]);
  });

  test('before authentication only authenticate and heartbeat are accepted', async () => {
    const handled: unknown[] = [];
    const { url, helper } = await serve({
      validateRoomFn: ({ rooms }) => rooms,
      messageHandler: (o) => {
        handled.push(o);
      },
    });
    const client = await connect(url);
    client.send({ event: 'heartbeat' });
    client.send({ event: 'chat', data: 'hi' });
    client.send({ event: 'join', data: { rooms: ['lobby'] } });
    await client.until(() => client.all('error').length === 2, 'two errors');
    expect(client.all('error').map((f) => f.data.message)).toEqual([
      'Not authenticated: only authenticate and heartbeat are accepted',
      'Not authenticated: only authenticate and heartbeat are accepted',
    ]);
    expect(handled).toEqual([]);
    expect(helper.getClientsByRoom({ room: 'lobby' })).toEqual([]);
    // and the connection is still usable
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('connected');
  });

  test('a second authenticate is answered with an error and changes nothing', async () => {
    const { url, helper } = await serve();
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok', user: 'first' } });
    const { data } = await client.next('connected');
    client.send({ event: 'authenticate', data: { token: 'ok', user: 'second' } });
    const error = await client.next('error');
    expect(error.data.message).toBe('Already authenticated');
    expect(helper.getClients({ id: data.id })!.userId).toBe('first');
    expect(helper.getClientsByUser({ userId: 'second' })).toEqual([]);
    expect(client.all('connected').length).toBe(1);
  });

  test('authenticate while one is in progress is refused', async () => {
    let release!: (v: { userId: string }) => void;
    const { url } = await serve({
      authenticateFn: () =>
        new Promise((resolve) => {
          release = resolve;
        }),
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: {} });
    client.send({ event: 'authenticate', data: {} });
    const error = await client.next('error');
    expect(error.data.message).toBe('Authentication already in progress');
    release({ userId: 'u' });
    await client.next('connected');
    expect(client.all('connected').length).toBe(1);
  });

  test('authenticate data must be an object; a missing one is passed as {}', async () => {
    const seen: unknown[] = [];
    const { url } = await serve({
      authenticateFn: (data) => {
        seen.push(data);
        return { userId: 'u' };
      },
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: 'token-as-string' });
    expect((await client.next('error')).data.message).toBe('authenticate data must be an object');
    client.send({ event: 'authenticate' });
    await client.next('connected');
    expect(seen).toEqual([{}]);
  });

  test('a throwing clientConnectedFn is logged and the client stays connected', async () => {
    const logger = recordingLogger();
    const { url, helper } = await serve({
      logger,
      clientConnectedFn: () => {
        throw new Error('oops');
      },
    });
    const client = await TestClient.authenticated(url);
    clients.push(client);
    await eventually(() => logger.lines.some((l) => l.message === 'clientConnectedFn threw'));
    helper.sendToClient({ clientId: client.id, event: 'still-here', data: true });
    await client.next('still-here');
  });

  test('clientDisconnectedFn gets clientId and userId after cleanup; a rejecting one is logged', async () => {
    const logger = recordingLogger();
    const calls: unknown[] = [];
    let statsAtCall: unknown;
    const { url, helper } = await serve({
      logger,
      clientDisconnectedFn: async (o) => {
        calls.push(o);
        statsAtCall = helper.getStats();
        throw new Error('cleanup failed');
      },
    });
    const client = await TestClient.authenticated(url, { token: 'ok', user: 'bob' });
    const id = client.id;
    client.close();
    await eventually(() => calls.length === 1);
    expect(calls[0]).toEqual({ clientId: id, userId: 'bob' });
    expect(statsAtCall).toMatchObject({ clients: 0, users: 0, rooms: 0 });
    await eventually(() => logger.lines.some((l) => l.message === 'clientDisconnectedFn rejected'));
  });
});

describe('requireEncryption', () => {
  const ecdh = ECDH.withAlgorithm();

  test('handshakeFn result goes into connected (serverPublicKey and salt) and the client is encrypted', async () => {
    const server = await ecdh.generateKeyPair();
    const handshakeCalls: unknown[] = [];
    const { url, helper } = await serve({
      requireEncryption: true,
      handshakeFn: async (opts) => {
        handshakeCalls.push(opts);
        const peer = await ecdh.importPublicKey({ rawKeyB64: opts.data.publicKey as string });
        const { salt } = await ecdh.deriveAESKey({
          privateKey: server.keyPair.privateKey,
          peerPublicKey: peer,
        });
        return { serverPublicKey: server.publicKeyB64, salt };
      },
    });
    const mine = await ecdh.generateKeyPair();
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok', user: 'enc', publicKey: mine.publicKeyB64 } });
    const { data } = await client.next('connected');
    expect(data.serverPublicKey).toBe(server.publicKeyB64);
    expect(typeof data.salt).toBe('string');
    expect(handshakeCalls).toEqual([
      { clientId: data.id, userId: 'enc', data: { token: 'ok', user: 'enc', publicKey: mine.publicKeyB64 } },
    ]);
    expect(helper.getClients({ id: data.id })!.encrypted).toBe(true);
  });

  test.each([
    ['no handshakeFn', undefined],
    ['handshakeFn returning null', () => null],
    ['handshakeFn returning false', () => false],
    [
      'handshakeFn throwing',
      () => {
        throw new Error('bad key');
      },
    ],
    ['handshakeFn without serverPublicKey', () => ({ salt: 'x' })],
  ])('%s closes with 4004', async (_name, handshakeFn) => {
    const logger = recordingLogger();
    const { url, helper } = await serve({
      requireEncryption: true,
      handshakeFn: handshakeFn as never,
      logger,
    });
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('error');
    expect((await client.closedWithin()).code).toBe(4004);
    expect(client.all('connected')).toEqual([]);
    await eventually(() => helper.getStats().clients === 0);
    if (!handshakeFn) {
      expect(
        logger.lines.some((l) => l.message === 'requireEncryption is true but no handshakeFn configured'),
      ).toBe(true);
    }
  });
});

describe('a late authenticateFn result', () => {
  // Fake sockets hold the close callback back, which opens the window between the
  // 4001 close and the helper forgetting the client; a real Bun socket runs it at once.
  test('after the 4001 deadline closed the socket, it admits nothing and calls nothing', async () => {
    const fakeServer = new FakeServer();
    let release: (value: { userId: string }) => void = () => {};
    const connected: string[] = [];
    const helper = new WebSocketServerHelper({
      identifier: 'late',
      server: fakeServer as never,
      logger: silentLogger,
      authTimeout: 20,
      authenticateFn: () => new Promise<{ userId: string }>((resolve) => (release = resolve)),
      clientConnectedFn: ({ clientId }) => {
        connected.push(clientId);
      },
    });
    await helper.configure();
    try {
      const socket = new FakeSocket('late-1');
      fakeServer.attach(socket);
      helper.onClientConnect({ clientId: 'late-1', socket: socket as never });
      helper.onClientMessage({ clientId: 'late-1', raw: '{"event":"authenticate","data":{}}' });
      await eventually(() => socket.closeCode === 4001, 2_000, '4001 after authTimeout * 3');
      release({ userId: 'u' });
      await Bun.sleep(5);
      expect(connected).toEqual([]);
      expect(socket.lastFrame?.includes('"connected"') ?? false).toBe(false);
      expect(helper.getClients({ id: 'late-1' })?.state).toBe(WebSocketClientStates.AUTHENTICATING);
      helper.onClientDisconnect({ clientId: 'late-1' });
      expect(helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    } finally {
      await helper.shutdown();
    }
  });
});

describe('the upgrade request reaches authentication (handleUpgrade)', () => {
  type TSeen = {
    data: unknown;
    cookie: string | null;
    session: string | undefined;
    theme: string | undefined;
    address: string | undefined;
    path: string;
    room: string | null;
    upgradeData: unknown;
  };
  /** A helper with no `server` option, served by one Bun.serve whose fetch is `handleUpgrade`. */
  async function upgradeServer(extra: Partial<IWebSocketServerOptions> = {}) {
    const seen: Array<TSeen | undefined> = [];
    const helper = new WebSocketServerHelper({
      identifier: 'upgrade-test',
      logger: silentLogger,
      allowedOrigins: ['http://app.test'],
      authenticateFn: (data, upgrade) => {
        seen.push(
          upgrade && {
            data,
            cookie: upgrade.headers.get('cookie'),
            session: upgrade.cookies.sid,
            theme: upgrade.cookies.theme,
            address: upgrade.address,
            path: upgrade.url.pathname,
            room: upgrade.query.get('room'),
            upgradeData: upgrade.data,
          },
        );
        const sid = upgrade?.cookies.sid ?? (data as { token?: string }).token;
        return sid === 's3cret' || sid === 'ok' ? { userId: 'ada' } : null;
      },
      ...extra,
    });
    await helper.configure();
    const bun = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req, srv) =>
        new URL(req.url).pathname === helper.getPath()
          ? helper.handleUpgrade(req, srv, { tenant: 'acme' })
          : new Response('app'),
      websocket: helper.getBunWebSocketHandler(),
    });
    const url = `ws://127.0.0.1:${bun.port}${helper.getPath()}`;
    const stop = async () => {
      await helper.shutdown();
      bun.stop(true);
    };
    stops.push(stop);
    return { helper, bun, url, seen };
  }
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  test('headers, parsed cookies, peer address, URL, query and upgrade data reach authenticateFn; nothing stays on the socket', async () => {
    const { helper, url, seen } = await upgradeServer();
    const ws = new WebSocket(`${url}?room=lobby&x=1`, {
      headers: { cookie: 'theme=dark; sid=s3cret; note=a%20b', origin: 'http://app.test' },
    } as unknown as string[]);
    const client = await TestClient.attach(ws);
    clients.push(client);
    client.send({ event: 'authenticate', data: { hello: 1 } });
    const connected = await client.next('connected');
    expect(connected.data.userId).toBe('ada');
    expect(seen).toEqual([
      {
        data: { hello: 1 },
        cookie: 'theme=dark; sid=s3cret; note=a%20b',
        session: 's3cret',
        theme: 'dark',
        address: '127.0.0.1',
        path: '/ws',
        room: 'lobby',
        upgradeData: { tenant: 'acme' },
      },
    ]);
    // Admitted: the socket's data holds the id and no longer the request.
    const record = helper.getClients({ id: connected.data.id })!;
    expect((record.socket.data as { upgrade?: unknown }).upgrade).toBeUndefined();
  });

  test('a refused cookie closes 4003; a client without cookies authenticates by token', async () => {
    const { url, seen } = await upgradeServer();
    const bad = await TestClient.attach(
      new WebSocket(url, { headers: { cookie: 'sid=wrong' } } as unknown as string[]),
    );
    clients.push(bad);
    bad.send({ event: 'authenticate', data: {} });
    expect((await bad.closed).code).toBe(4003);
    expect(seen[0]?.session).toBe('wrong');

    const good = await connect(url); // no Origin header (not a browser): allowed; no cookie
    good.send({ event: 'authenticate', data: { token: 'ok' } });
    expect((await good.next('connected')).data.userId).toBe('ada');
    expect(seen[1]?.cookie).toBeNull();
    expect(seen[1]?.session).toBeUndefined();
  });

  test('handleUpgrade answers 404 off its path, 426 without an upgrade, 403 for another origin, 503 while stopping', async () => {
    const { helper, bun, url } = await upgradeServer();
    const http = `http://127.0.0.1:${bun.port}${helper.getPath()}`;
    expect((await fetch(http)).status).toBe(426);
    expect((await rawUpgrade(url, { origin: 'http://evil.test' })).status).toBe(403);
    expect((await rawUpgrade(url, { origin: 'http://app.test' })).status).toBe(101);
    const offPath = helper.handleUpgrade(new Request(`http://127.0.0.1:${bun.port}/other`), bun);
    expect(offPath?.status).toBe(404);
    await helper.shutdown();
    expect((await rawUpgrade(url, { origin: 'http://app.test' })).status).toBe(503);
  });

  test('handshakeFn sees the same upgrade', async () => {
    const handshakes: unknown[] = [];
    const { url } = await upgradeServer({
      requireEncryption: true,
      handshakeFn: ({ upgrade }) => {
        handshakes.push(upgrade?.cookies.sid);
        return null; // refuse: only what it was given matters here
      },
    });
    const client = await TestClient.attach(
      new WebSocket(url, { headers: { cookie: 'sid=s3cret' } } as unknown as string[]),
    );
    clients.push(client);
    client.send({ event: 'authenticate', data: {} });
    await client.closed;
    expect(handshakes).toEqual(['s3cret']);
  });

  test('without a server option, publishing reaches sockets once handleUpgrade met the server', async () => {
    const { helper, url } = await upgradeServer();
    const client = await connect(url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('connected');
    helper.send({ destination: 'ws-default', payload: { topic: 'news', data: 'hi' } });
    expect((await client.next('news')).data).toBe('hi');
  });
});
