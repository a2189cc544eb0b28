import { describe, expect, test } from 'bun:test';
import { type IWebSocketClient, silentLogger, WebSocketClientStates } from '../../src/index.ts';
import { ServerCounters } from '../../src/metrics/counters.ts';
import { ClientRegistry } from '../../src/server/client-registry.ts';
import { LocalDelivery } from '../../src/server/local-delivery.ts';
import { FakeServer, FakeSocket } from '../support/fake-socket.ts';
import { eventually, recordingLogger, serverPerTest, type TTestServerOptions } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

const serve = serverPerTest();
async function many(url: string, n: number, user = (i: number) => `u${i}`): Promise<TestClient[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => TestClient.authenticated(url, { token: 'ok', user: user(i) })),
  );
}

/** An authenticated, plain client record around a fake socket, for the narrow LocalDelivery tests. */
function fakeClient(id: string, socket: FakeSocket): IWebSocketClient {
  return {
    id,
    socket,
    state: WebSocketClientStates.AUTHENTICATED,
    rooms: new Set(),
    backpressured: false,
    encrypted: false,
    connectedAt: 0,
    lastActivity: 0,
  };
}

describe('local delivery without a transformer', () => {
  test('sendToClient reaches one client only', async () => {
    const { url, helper } = await serve();
    const [a, b] = await many(url, 2);
    helper.sendToClient({ clientId: a!.id, event: 'direct', data: { n: 1 } });
    expect((await a!.next('direct')).data).toEqual({ n: 1 });
    await expectSilence(b!, 'direct');
    helper.sendToClient({ clientId: 'nobody', event: 'direct', data: 1 }); // unknown ids are ignored
  });

  test('sendToUser reaches every session of the user', async () => {
    const { url, helper } = await serve();
    const clients = await many(url, 3, (i) => (i < 2 ? 'same' : 'other'));
    helper.sendToUser({ userId: 'same', event: 'for-user', data: 'x' });
    await clients[0]!.next('for-user');
    await clients[1]!.next('for-user');
    await expectSilence(clients[2]!, 'for-user');
    expect(helper.getClientsByUser({ userId: 'same' }).length).toBe(2);
  });

  test('sendToRoom fans out to members only, serialized with data intact', async () => {
    const { url, helper } = await serve();
    const clients = await many(url, 4);
    for (const c of clients.slice(0, 3)) helper.joinRoom({ clientId: c.id, room: 'r' });
    const data = { text: 'héllo', list: [1, 2, { deep: null }], n: 1.5 };
    helper.sendToRoom({ room: 'r', event: 'room-msg', data });
    for (const c of clients.slice(0, 3)) expect((await c.next('room-msg')).data).toEqual(data);
    await expectSilence(clients[3]!, 'room-msg');
    expect(clients[0]!.raw.at(-1)).toBe(JSON.stringify({ event: 'room-msg', data }));
  });

  test('sendToRoom with one excluded client (the sender case)', async () => {
    const { url, helper } = await serve();
    const clients = await many(url, 3);
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });
    helper.sendToRoom({ room: 'r', event: 'm', data: 1, exclude: [clients[0]!.id] });
    await clients[1]!.next('m');
    await clients[2]!.next('m');
    await expectSilence(clients[0]!, 'm');
    // the excluded client is still subscribed afterwards
    helper.sendToRoom({ room: 'r', event: 'm2', data: 2 });
    for (const c of clients) await c.next('m2');
  });

  test('sendToRoom with several excluded clients, unknown ids and non-members', async () => {
    const { url, helper } = await serve();
    const clients = await many(url, 5);
    for (const c of clients.slice(0, 4)) helper.joinRoom({ clientId: c.id, room: 'r' });
    const exclude = [clients[0]!.id, clients[1]!.id, 'unknown', clients[4]!.id];
    helper.sendToRoom({ room: 'r', event: 'm', data: 1, exclude });
    await clients[2]!.next('m');
    await clients[3]!.next('m');
    await expectSilence(clients[0]!, 'm');
    await expectSilence(clients[1]!, 'm', 10);
    helper.sendToRoom({ room: 'r', event: 'again', data: 1 });
    for (const c of clients.slice(0, 4)) await c.next('again');
    await expectSilence(clients[4]!, 'again', 10);
  });

  test('exclusion still works with publishToSelf enabled', async () => {
    const { url, helper } = await serve({ serverOptions: { publishToSelf: true } });
    const clients = await many(url, 2);
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });
    helper.sendToRoom({ room: 'r', event: 'm', data: 1, exclude: [clients[0]!.id] });
    await clients[1]!.next('m');
    await expectSilence(clients[0]!, 'm');
  });

  test('broadcast reaches authenticated clients only, honouring exclude', async () => {
    const { url, helper } = await serve();
    const clients = await many(url, 3);
    const pending = await TestClient.connect(url);
    helper.broadcast({ event: 'all', data: 1 });
    for (const c of clients) await c.next('all');
    await expectSilence(pending, 'all');
    helper.broadcast({ event: 'most', data: 1, exclude: [clients[1]!.id] });
    await clients[0]!.next('most');
    await clients[2]!.next('most');
    await expectSilence(clients[1]!, 'most');
    pending.close();
  });

  test('data that cannot be serialized throws at the caller', async () => {
    const { url, helper } = await serve();
    await many(url, 1);
    expect(() => helper.sendToRoom({ room: 'ws-default', event: 'bad', data: { n: 1n } })).toThrow();
  });
});

describe('encrypted clients and the outbound transformer', () => {
  function transformerSetup(extra: TTestServerOptions = {}) {
    const calls: Array<{ clientId: string; event: string }> = [];
    let inFlight = 0;
    let peak = 0;
    const opts: TTestServerOptions = {
      encryptedBatchLimit: 3,
      outboundTransformer: async ({ client, event, data }) => {
        calls.push({ clientId: client.id, event });
        inFlight++;
        peak = Math.max(peak, inFlight);
        await Bun.sleep(5);
        inFlight--;
        return { event: 'encrypted', data: { for: client.id, inner: { event, data } } };
      },
      ...extra,
    };
    return { calls, opts, peak: () => peak };
  }

  test('plain clients never pay for the transformer; encrypted ones get it per client', async () => {
    const setup = transformerSetup();
    const { url, helper } = await serve(setup.opts);
    const clients = await many(url, 8);
    const encrypted = clients.slice(0, 6);
    for (const c of encrypted) helper.enableClientEncryption({ clientId: c.id });
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });

    helper.sendToRoom({ room: 'r', event: 'secret', data: { v: 1 } });
    for (const c of clients.slice(6)) expect((await c.next('secret')).data).toEqual({ v: 1 });
    for (const c of encrypted) {
      const frame = await c.next('encrypted');
      expect(frame.data).toEqual({ for: c.id, inner: { event: 'secret', data: { v: 1 } } });
      await expectSilence(c, 'secret', 5);
    }
    expect(setup.calls.map((c) => c.clientId).sort()).toEqual(encrypted.map((c) => c.id).sort());
    expect(setup.peak()).toBeLessThanOrEqual(3);
    expect(setup.peak()).toBeGreaterThan(1);
    expect(helper.getClients({ id: encrypted[0]!.id })!.encrypted).toBe(true);
  });

  test('broadcast, sendToUser and sendToClient also go through the transformer for encrypted clients', async () => {
    const setup = transformerSetup();
    const { url, helper } = await serve(setup.opts);
    const [enc, plain] = await many(url, 2, (i) => (i === 0 ? 'enc-user' : 'plain-user'));
    helper.enableClientEncryption({ clientId: enc!.id });
    helper.broadcast({ event: 'b', data: 1 });
    helper.sendToUser({ userId: 'enc-user', event: 'u', data: 2 });
    helper.sendToClient({ clientId: enc!.id, event: 'c', data: 3 });
    await plain!.next('b');
    await enc!.until(() => enc!.all('encrypted').length === 3, 'three encrypted frames');
    expect(enc!.all('encrypted').map((f) => f.data.inner.event)).toEqual(['b', 'u', 'c']);
    expect(setup.calls.every((c) => c.clientId === enc!.id)).toBe(true);
  });

  test('encrypted clients are honoured by exclude', async () => {
    const setup = transformerSetup();
    const { url, helper } = await serve(setup.opts);
    const [a, b] = await many(url, 2);
    for (const c of [a!, b!]) helper.enableClientEncryption({ clientId: c.id });
    helper.broadcast({ event: 'x', data: 1, exclude: [a!.id] });
    await b!.next('encrypted');
    await expectSilence(a!, 'encrypted');
  });

  test('a transformer returning null sends the original frame', async () => {
    const { url, helper } = await serve({ outboundTransformer: () => null });
    const [a] = await many(url, 1);
    helper.enableClientEncryption({ clientId: a!.id });
    helper.sendToRoom({ room: 'ws-default', event: 'plain-after-all', data: 7 });
    expect((await a!.next('plain-after-all')).data).toBe(7);
  });

  test('a failing transformer drops the message for that client (never plaintext) and others still receive', async () => {
    const logger = recordingLogger();
    const { url, helper } = await serve({
      logger,
      outboundTransformer: ({ client, event, data }) => {
        if (client.userId === 'broken') throw new Error('no key');
        return { event: 'encrypted', data: { event, data } };
      },
    });
    const [broken, fine] = await many(url, 2, (i) => (i === 0 ? 'broken' : 'fine'));
    helper.enableClientEncryption({ clientId: broken!.id });
    helper.enableClientEncryption({ clientId: fine!.id });
    helper.sendToRoom({ room: 'ws-default', event: 'm', data: 'secret' });
    await fine!.next('encrypted');
    await expectSilence(broken!, 'm');
    expect(broken!.all('encrypted')).toEqual([]);
    await eventually(() => logger.lines.some((l) => l.message.includes('message dropped')));
  });

  test('messages to one encrypted client keep their order even when the transformer is uneven', async () => {
    let n = 0;
    const { url, helper } = await serve({
      outboundTransformer: async ({ event, data }) => {
        await Bun.sleep(n++ % 2 === 0 ? 20 : 1); // odd messages would overtake without ordering
        return { event: 'encrypted', data: { event, data } };
      },
    });
    const [a] = await many(url, 1);
    helper.enableClientEncryption({ clientId: a!.id });
    for (let i = 0; i < 10; i++) helper.sendToClient({ clientId: a!.id, event: 'seq', data: i });
    await a!.until(() => a!.all('encrypted').length === 10, 'ten frames');
    expect(a!.all('encrypted').map((f) => f.data.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('enableClientEncryption without a transformer still delivers (one by one)', async () => {
    const { url, helper } = await serve();
    const [a] = await many(url, 1);
    helper.enableClientEncryption({ clientId: a!.id });
    helper.sendToRoom({ room: 'ws-default', event: 'r', data: 1 });
    helper.broadcast({ event: 'b', data: 1 });
    await a!.next('r');
    await a!.next('b');
  });
});

describe('synchronous transformers (the fast encrypted path)', () => {
  // Narrow unit test: what is written when, and how many writes each client gets.
  test('synchronous answers of one task are written together at its end: one corked write per client', async () => {
    const registry = new ClientRegistry();
    const server = new FakeServer();
    const sockets: FakeSocket[] = [];
    const frames: string[] = [];
    const corks = new Map<string, number>();
    const written = new Map<string, string[]>();
    for (let i = 0; i < 3; i++) {
      const socket = new FakeSocket(`c${i}`);
      const send = socket.send.bind(socket);
      socket.send = (data) => {
        written.set(socket.clientId, [...(written.get(socket.clientId) ?? []), String(data)]);
        return send(data);
      };
      const cork = socket.cork.bind(socket);
      socket.cork = (cb) => {
        corks.set(socket.clientId, (corks.get(socket.clientId) ?? 0) + 1);
        return cork(cb);
      };
      server.attach(socket);
      sockets.push(socket);
      registry.add(fakeClient(`c${i}`, socket));
      registry.markEncrypted(registry.get(`c${i}`)!);
      registry.join(registry.get(`c${i}`)!, 'r');
    }
    const delivery = new LocalDelivery({
      server,
      registry,
      transformer: ({ client, frame }) => {
        frames.push(frame!);
        return { event: 'encrypted', data: { to: client.id, n: frames.length } };
      },
      batchLimit: 1,
      publishToSelf: false,
      logger: silentLogger,
    });
    delivery.toRoom('r', 'm', { n: 1 });
    delivery.toRoom('r', 'm', { n: 2 });
    // Both messages were transformed for every client right away; nothing is written yet.
    expect(frames).toEqual([
      ...Array(3).fill('{"event":"m","data":{"n":1}}'),
      ...Array(3).fill('{"event":"m","data":{"n":2}}'),
    ]);
    expect(sockets.map((s) => s.sent)).toEqual([0, 0, 0]);
    await Promise.resolve(); // the end of the task: one flush, no promise per client
    for (const [i, socket] of sockets.entries()) {
      expect(written.get(socket.clientId)).toEqual([
        JSON.stringify({ event: 'encrypted', data: { to: socket.clientId, n: i + 1 } }),
        JSON.stringify({ event: 'encrypted', data: { to: socket.clientId, n: i + 4 } }),
      ]);
      expect(corks.get(socket.clientId)).toBe(1);
    }
  });

  test('at the end of the task: a disconnected client is skipped, a throwing socket does not stop the others', async () => {
    const registry = new ClientRegistry();
    const logger = recordingLogger();
    const sockets = [0, 1, 2].map((i) => new FakeSocket(`c${i}`));
    for (const socket of sockets) {
      registry.add(fakeClient(socket.clientId, socket));
      registry.markEncrypted(registry.get(socket.clientId)!);
      registry.join(registry.get(socket.clientId)!, 'r');
    }
    sockets[0]!.cork = () => {
      throw new Error('socket broke');
    };
    const delivery = new LocalDelivery({
      server: new FakeServer(),
      registry,
      transformer: ({ event, data }) => ({ event: 'encrypted', data: { event, data } }),
      batchLimit: 1,
      publishToSelf: false,
      logger,
    });
    delivery.toRoom('r', 'm', 1);
    delivery.toRoom('r', 'm', 2);
    registry.get('c1')!.state = WebSocketClientStates.DISCONNECTED; // went away before the task ended
    await Promise.resolve();
    expect(sockets.map((s) => s.sent)).toEqual([0, 0, 2]);
    expect(logger.lines.some((l) => l.message.includes('writing to client c0 failed'))).toBe(true);
    // The next task starts from an empty batch: nothing is written twice.
    delivery.toRoom('r', 'm', 3);
    await Promise.resolve();
    expect(sockets[2]!.sent).toBe(3);
    expect(sockets[2]!.lastFrame).toBe(JSON.stringify({ event: 'encrypted', data: { event: 'm', data: 3 } }));
  });

  test('a synchronous answer never overtakes an earlier asynchronous one for the same client', async () => {
    let calls = 0;
    const { url, helper } = await serve({
      outboundTransformer: ({ event, data }) => {
        const out = { event: 'encrypted', data: { event, data } };
        // Every fifth call is slow and asynchronous; the rest answer at once.
        if (calls++ % 5 === 0) return Bun.sleep(30).then(() => out);
        return out;
      },
    });
    const clients = await many(url, 3);
    for (const c of clients) helper.enableClientEncryption({ clientId: c.id });
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 0) helper.sendToClient({ clientId: clients[i % 2]!.id, event: 'seq', data: i });
      else helper.sendToRoom({ room: 'r', event: 'seq', data: i });
    }
    for (const [k, c] of clients.entries()) {
      const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 !== 0 || i % 2 === k);
      await c.until(() => c.all('encrypted').length === expected.length, 'every frame');
      expect(c.all('encrypted').map((f) => f.data.data)).toEqual(expected);
    }
  });

  test('a message waiting for a window slot keeps its place: a later send to that client arrives after it', async () => {
    const { url, helper } = await serve({
      encryptedBatchLimit: 1,
      outboundTransformer: async ({ event, data }) => {
        await Bun.sleep(5);
        return { event: 'encrypted', data: { event, data } };
      },
    });
    const clients = await many(url, 4);
    for (const c of clients) helper.enableClientEncryption({ clientId: c.id });
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });
    const last = clients[3]!;
    helper.sendToRoom({ room: 'r', event: 'first', data: 1 }); // last's turn comes after three slow calls
    helper.sendToClient({ clientId: last.id, event: 'second', data: 2 });
    await last.until(() => last.all('encrypted').length === 2, 'both frames');
    expect(last.all('encrypted').map((f) => f.data.event)).toEqual(['first', 'second']);
  });

  test('a synchronous answer that cannot be serialized is logged and dropped for that client only', async () => {
    const logger = recordingLogger();
    const { url, helper } = await serve({
      logger,
      outboundTransformer: ({ client, event, data }) => ({
        event: 'encrypted',
        data: client.userId === 'broken' ? { big: 1n } : { event, data },
      }),
    });
    const [broken, fine] = await many(url, 2, (i) => (i === 0 ? 'broken' : 'fine'));
    for (const c of [broken!, fine!]) helper.enableClientEncryption({ clientId: c.id });
    helper.sendToRoom({ room: 'ws-default', event: 'm', data: 'secret' });
    expect((await fine!.next('encrypted')).data).toEqual({ event: 'm', data: 'secret' });
    await expectSilence(broken!, 'encrypted');
    await eventually(() => logger.lines.some((l) => l.message.includes('message dropped')));
  });

  test('under mixed sync/async traffic every encrypted client gets every message once, in order, while one is killed', async () => {
    let calls = 0;
    const { url, helper } = await serve({
      encryptedBatchLimit: 2,
      outboundTransformer: ({ event, data }) => {
        const out = { event: 'encrypted', data: { event, data } };
        return calls++ % 7 === 0 ? Bun.sleep(1).then(() => out) : out;
      },
    });
    const clients = await many(url, 6);
    for (const c of clients) helper.enableClientEncryption({ clientId: c.id });
    for (const c of clients) helper.joinRoom({ clientId: c.id, room: 'r' });
    const [victim, ...survivors] = clients;
    const total = 200;
    for (let i = 0; i < total; i++) {
      if (i === total / 2) victim!.ws.close(); // gone mid-traffic, sends to it still pending
      helper.sendToRoom({ room: 'r', event: 'seq', data: i });
      if (i % 20 === 0) await Bun.sleep(1);
    }
    for (const c of survivors) {
      await c.until(() => c.all('encrypted').length >= total, 'every message', 5_000);
      expect(c.all('encrypted').map((f) => f.data.data)).toEqual(Array.from({ length: total }, (_, i) => i));
    }
    await eventually(() => helper.getClients({ id: victim!.id }) === undefined);
    // The victim's prefix is in order with no duplicate.
    const got = victim!.all('encrypted').map((f) => f.data.data);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i));
  });
});

describe('backpressure', () => {
  test('send() returning -1 sets backpressured and drain clears it', async () => {
    const { url, helper } = await serve({ serverOptions: { backpressureLimit: 1024 * 1024 * 64 } });
    const [a] = await many(url, 1);
    const tracked = helper.getClients({ id: a!.id }) as IWebSocketClient;
    expect(tracked.backpressured).toBe(false);
    const big = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 64 && !tracked.backpressured; i++) {
      helper.sendToClient({ clientId: a!.id, event: 'big', data: big });
    }
    expect(tracked.backpressured).toBe(true);
    await eventually(() => tracked.backpressured === false, 5_000, 'drain');
  });
});

describe('backpressure reported by send()', () => {
  // Narrow unit test: a real socket cannot be made to answer 0 on demand.
  test.each([
    [-1, true],
    [0, true],
    [12, false],
  ])('send() answering %p sets backpressured: %p', (answer, expected) => {
    const registry = new ClientRegistry();
    const socket = new FakeSocket('c1');
    socket.send = () => answer;
    const client = fakeClient('c1', socket);
    registry.add(client);
    const delivery = new LocalDelivery({
      server: new FakeServer(),
      registry,
      batchLimit: 10,
      publishToSelf: false,
      logger: silentLogger,
      counters: new ServerCounters(),
    });
    delivery.toClient('c1', 'e', 1);
    expect(client.backpressured).toBe(expected);
  });
});
