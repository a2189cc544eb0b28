import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { AnyRecord } from '../../src/common/types.ts';
import { figure } from '../support/figures.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * Hostile or broken clients against a real server. For every case: the
 * documented outcome (an `error` event or a close code), the server's indexes
 * and timers left clean, and afterwards a fresh client can still authenticate
 * and receive.
 */

const MAX_PAYLOAD = 4 * 1024;
/** Small so that the authTimeout * 3 bound of a hung authenticateFn is quick to observe. */
const AUTH_TIMEOUT = 150;

/** Controllable authentications: each `defer` token waits here until the test settles it. */
const deferred: Array<(result: AnyRecord | null) => void> = [];
const calls = { authenticate: 0, connected: [] as string[], messageHandler: 0, validateRoom: 0 };

function authenticateFn(data: AnyRecord): AnyRecord | null | Promise<AnyRecord | null> {
  calls.authenticate++;
  const userId = typeof data.user === 'string' ? data.user : 'u1';
  switch (data.token) {
    case 'ok':
      return { userId };
    case 'slow':
      return Bun.sleep(50).then(() => ({ userId }));
    case 'defer':
      return new Promise((resolve) => deferred.push(resolve));
    case 'hang':
      return new Promise(() => {}); // never settles
    case 'throw':
      throw new Error('authentication backend exploded');
    default:
      return null;
  }
}

let main: ITestServer;
let quick: ITestServer;
let encrypted: ITestServer;

beforeAll(async () => {
  const common = {
    // These cases prove what happens with the limits off (every frame handled);
    // limits.test.ts floods the default and custom limits.
    limits: false as const,
    authenticateFn,
    clientConnectedFn: ({ clientId }: { clientId: string }) => {
      calls.connected.push(clientId);
    },
    messageHandler: () => {
      calls.messageHandler++;
    },
    validateRoomFn: ({ rooms }: { rooms: string[] }) => {
      calls.validateRoom++;
      return rooms;
    },
  };
  main = await startServer({
    ...common,
    authTimeout: 5_000,
    serverOptions: { maxPayloadLength: MAX_PAYLOAD },
  });
  quick = await startServer({ ...common, authTimeout: AUTH_TIMEOUT });
  encrypted = await startServer({
    ...common,
    requireEncryption: true,
    handshakeFn: ({ data }) =>
      typeof (data as AnyRecord).publicKey === 'string'
        ? { serverPublicKey: 'server-key', salt: 'salt' }
        : null,
  });
});
afterAll(async () => {
  for (const resolve of deferred.splice(0)) resolve(null);
  await main.stop();
  await quick.stop();
  await encrypted.stop();
});

/** The server still serves: a brand-new client authenticates and receives a send(). */
async function freshClientWorks(server: ITestServer, auth: AnyRecord = { token: 'ok' }): Promise<void> {
  const client = await TestClient.authenticated(server.url, auth);
  server.helper.send({ destination: client.id, payload: { topic: 'probe', data: 'still-alive' } });
  expect((await client.next('probe')).data).toBe('still-alive');
  client.close();
  await client.closed;
}

/** No client of this server is left in any index and no auth timer is pending. */
async function serverIsClean(server: ITestServer): Promise<void> {
  await eventually(
    () => {
      const s = server.helper.getStats();
      return s.clients === 0 && s.users === 0 && s.rooms === 0 && s.authTimers === 0;
    },
    3_000,
    'no client, user, room or timer left',
  );
}

describe('abuse', () => {
  test('a flood of events before authentication: each one refused with an error, no handler runs', async () => {
    const FLOOD = 2_000;
    const client = await TestClient.connect(main.url);
    const handlerBefore = calls.messageHandler;
    const started = performance.now();
    for (let i = 0; i < FLOOD; i++) client.send({ event: 'chat', data: { i } });
    await client.until(() => client.all('error').length >= FLOOD, 'an error per frame', 10_000);
    const ms = performance.now() - started;
    expect(client.all('error').every((f) => /Not authenticated/.test(f.data.message))).toBe(true);
    expect(calls.messageHandler).toBe(handlerBefore);
    // The flooding connection itself is still usable and may still authenticate.
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('connected');
    figure(
      'abuse.preauth-flood',
      `frames=${FLOOD} errors=${client.all('error').length} handlerCalls=0 ms=${ms.toFixed(0)}`,
    );
    client.close();
    await client.closed;
    await serverIsClean(main);
    await freshClientWorks(main);
  });

  test('authenticate spam: authenticateFn runs once, one session, every extra attempt answered with an error', async () => {
    const SPAM = 500;
    const client = await TestClient.connect(main.url);
    const authBefore = calls.authenticate;
    const connectedBefore = calls.connected.length;
    for (let i = 0; i < SPAM; i++)
      client.send({ event: 'authenticate', data: { token: 'slow', user: 'spammer' } });
    await client.next('connected');
    await client.until(
      () => client.all('error').length >= SPAM - 1,
      'an error per extra authenticate',
      5_000,
    );
    // And once authenticated, more spam changes nothing either.
    for (let i = 0; i < 100; i++)
      client.send({ event: 'authenticate', data: { token: 'ok', user: 'someone-else' } });
    await client.until(
      () => client.all('error').length >= SPAM - 1 + 100,
      'errors after authentication',
      5_000,
    );
    await client.fence();
    expect(calls.authenticate - authBefore).toBe(1);
    expect(calls.connected.length - connectedBefore).toBe(1);
    expect(client.all('connected').length).toBe(1);
    expect(main.helper.getClientsByUser({ userId: 'spammer' }).length).toBe(1);
    expect(main.helper.getClientsByUser({ userId: 'someone-else' })).toEqual([]);
    figure(
      'abuse.authenticate-spam',
      `frames=${SPAM + 100} authenticateFnCalls=1 sessions=1 errors=${client.all('error').length - 1}`,
    );
    client.close();
    await client.closed;
    await serverIsClean(main);
    await freshClientWorks(main);
  });

  test('join floods: many requests are served, > 100 rooms in one request is refused whole, invalid names never reach validateRoomFn', async () => {
    const REQUESTS = 300;
    const client = await TestClient.authenticated(main.url);
    const roomsBefore = main.helper.getStats().rooms;
    const validateBefore = calls.validateRoom;
    const started = performance.now();
    for (let r = 0; r < REQUESTS; r++) {
      client.send({
        event: 'join',
        data: { rooms: Array.from({ length: 100 }, (_, i) => `flood-${r}-${i}`) },
      });
    }
    await client.until(() => client.all('join').length >= REQUESTS, 'every join answered', 20_000);
    const ms = performance.now() - started;
    expect(main.helper.getStats().rooms - roomsBefore).toBe(REQUESTS * 100);

    // 101 rooms in one request: an error, nothing joined, validateRoomFn not consulted.
    const validateMid = calls.validateRoom;
    client.send({ event: 'join', data: { rooms: Array.from({ length: 101 }, (_, i) => `over-${i}`) } });
    const refused = await client.next('error', (d) => /at most 100/.test(d.message));
    expect(refused.data.message).toContain('at most 100');
    // 100 invalid names: all dropped before the application sees them.
    client.send({
      event: 'join',
      data: { rooms: ['', 'ws:internal:broadcast', 'x'.repeat(257), 42, null, ...Array(95).fill('ws:x')] },
    });
    await client.until(() => client.all('join').length >= REQUESTS + 1, 'answer to the invalid-names join');
    expect(client.all('join').at(-1)!.data).toEqual({ rooms: [] });
    expect(calls.validateRoom).toBe(validateMid);
    expect(main.helper.getClientsByRoom({ room: 'over-0' })).toEqual([]);
    expect(calls.validateRoom - validateBefore).toBe(REQUESTS);

    figure('abuse.join-flood', `requests=${REQUESTS} roomsJoined=${REQUESTS * 100} ms=${ms.toFixed(0)}`);
    figure('abuse.join-over-100', 'error-event, nothing joined');
    // Leaving frees every room index entry at once.
    client.close();
    await client.closed;
    await serverIsClean(main);
    await freshClientWorks(main);
  }, 30_000);

  test('an oversize frame (> maxPayloadLength) closes the connection with 1009', async () => {
    const client = await TestClient.authenticated(main.url);
    client.sendRaw(JSON.stringify({ event: 'chat', data: 'x'.repeat(MAX_PAYLOAD * 2) }));
    const closed = await client.closedWithin(3_000);
    expect(closed.code).toBe(1009);
    figure('abuse.oversize-frame', `close=${closed.code}`);
    await serverIsClean(main);
    // Just under the limit is fine.
    const ok = await TestClient.authenticated(main.url);
    ok.send({ event: 'chat', data: 'y'.repeat(MAX_PAYLOAD - 100) });
    await ok.fence();
    expect(ok.closeInfo).toBeUndefined();
    ok.close();
    await ok.closed;
    await freshClientWorks(main);
  });

  test('a hung authenticateFn: closed with 4001 once authTimeout * 3 has passed', async () => {
    const client = await TestClient.connect(quick.url);
    const started = performance.now();
    client.send({ event: 'authenticate', data: { token: 'hang' } });
    const closed = await client.closedWithin(AUTH_TIMEOUT * 3 + 2_000);
    const ms = performance.now() - started;
    expect(closed.code).toBe(4001);
    expect(ms).toBeGreaterThanOrEqual(AUTH_TIMEOUT * 3 - 20);
    figure(
      'abuse.hung-authenticate',
      `close=${closed.code} after-ms=${ms.toFixed(0)} bound-ms=${AUTH_TIMEOUT * 3}`,
    );
    await serverIsClean(quick);
    await freshClientWorks(quick);
  });

  test('activity without authenticating does not extend the auth deadline: 4001 at authTimeout', async () => {
    const client = await TestClient.connect(quick.url);
    const started = performance.now();
    const keepBusy = setInterval(() => {
      if (client.ws.readyState === WebSocket.OPEN) {
        client.send({ event: 'heartbeat' });
        client.send({ event: 'chat', data: 'let me in' });
      }
    }, 10);
    try {
      const closed = await client.closedWithin(AUTH_TIMEOUT + 2_000);
      const ms = performance.now() - started;
      expect(closed.code).toBe(4001);
      expect(ms).toBeLessThan(AUTH_TIMEOUT * 3);
      figure(
        'abuse.busy-but-unauthenticated',
        `close=${closed.code} after-ms=${ms.toFixed(0)} authTimeout=${AUTH_TIMEOUT}`,
      );
    } finally {
      clearInterval(keepBusy);
    }
    await serverIsClean(quick);
    await freshClientWorks(quick);
  });

  test('a throwing authenticateFn: error event, then closed with 4003', async () => {
    const client = await TestClient.connect(quick.url);
    client.send({ event: 'authenticate', data: { token: 'throw' } });
    const closed = await client.closedWithin();
    expect(closed.code).toBe(4003);
    expect(client.all('error').length).toBe(1);
    figure('abuse.throwing-authenticate', `close=${closed.code} errorEvents=1`);
    await serverIsClean(quick);
    await freshClientWorks(quick);
  });

  test('a client closing while its authenticateFn is pending leaves nothing behind', async () => {
    const client = await TestClient.connect(main.url);
    const pendingBefore = deferred.length;
    client.send({ event: 'authenticate', data: { token: 'defer', user: 'ghost' } });
    await eventually(() => deferred.length > pendingBefore, 3_000, 'authenticateFn called');
    const connectedBefore = calls.connected.length;
    client.close();
    await client.closed;
    await serverIsClean(main);
    // The application answers late, and positively: nothing may come of it.
    deferred.pop()!({ userId: 'ghost' });
    await Bun.sleep(50);
    expect(calls.connected.length).toBe(connectedBefore);
    expect(main.helper.getClientsByUser({ userId: 'ghost' })).toEqual([]);
    expect(main.helper.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    figure('abuse.close-during-authenticate', 'no index entry, no timer, no clientConnectedFn');
    await freshClientWorks(main);
  });

  test('requireEncryption: an authenticate without publicKey is refused with 4004', async () => {
    const client = await TestClient.connect(encrypted.url);
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    const closed = await client.closedWithin();
    expect(closed.code).toBe(4004);
    expect(client.all('error').length).toBe(1);
    expect(client.all('connected')).toEqual([]);
    figure('abuse.handshake-without-public-key', `close=${closed.code}`);
    await serverIsClean(encrypted);
    // A client that does send a key gets through and receives.
    const fresh = await TestClient.authenticated(encrypted.url, { token: 'ok', publicKey: 'client-key' });
    expect(fresh.all('connected')[0]!.data).toMatchObject({ serverPublicKey: 'server-key', salt: 'salt' });
    encrypted.helper.send({ destination: fresh.id, payload: { topic: 'probe', data: 1 } });
    await fresh.next('probe');
    fresh.close();
  });

  test('garbage frames after authentication: each answered with an error, the connection stays usable', async () => {
    const client = await TestClient.authenticated(main.url);
    const garbage: Array<string | Uint8Array> = [
      'not json',
      '[]',
      'null',
      '{"event":42}',
      '{"data":1}',
      '{"event":"connected"}',
      new Uint8Array([0, 1, 2, 255]),
    ];
    for (let round = 0; round < 100; round++) for (const g of garbage) client.sendRaw(g);
    await client.until(
      () => client.all('error').length >= 100 * garbage.length,
      'an error per bad frame',
      5_000,
    );
    main.helper.send({ destination: client.id, payload: { topic: 'probe', data: 'ok' } });
    await client.next('probe');
    figure('abuse.garbage-frames', `frames=${100 * garbage.length} errors=${client.all('error').length}`);
    client.close();
    await client.closed;
    await serverIsClean(main);
    await freshClientWorks(main);
  });
});
