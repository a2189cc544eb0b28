import { describe, expect, test } from 'bun:test';
import { type IWebSocketClient, silentLogger, WebSocketClientStates } from '../../src/index.ts';
import { ServerCounters } from '../../src/metrics/counters.ts';
import { ClientRegistry } from '../../src/server/client-registry.ts';
import { LocalDelivery } from '../../src/server/local-delivery.ts';
import { FakeServer, FakeSocket } from '../support/fake-socket.ts';
import { serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

// An asynchronous outbound transformer whose calls finish in any order (random delays): every
// encrypted client still gets every message sent to it, once, in the order it was sent, and the
// transformer is called for a client in that order too.

const serve = serverPerTest();

/** A small seeded generator, so a failure can be replayed (the seed is in the test name). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('an asynchronous transformer finishing out of order', () => {
  test.each([1, 2])(
    'real sockets (seed %p): room, broadcast, client and user sends all arrive once, in send order',
    async (seed) => {
      const next = random(seed);
      /** Per client: the sequence numbers in the order the transformer was called, and in the order it finished. */
      const called = new Map<string, number[]>();
      let finished = 0;
      let finishedOutOfOrder = 0;
      let lastStarted = -1;
      let started = 0;
      const { url, helper } = await serve({
        encryptedBatchLimit: 3,
        outboundTransformer: async ({ client, event, data }) => {
          const n = (data as { n: number }).n;
          called.set(client.id, [...(called.get(client.id) ?? []), n]);
          const mine = started++;
          // Some answers come at once, some after a microtask, most after 0-6 ms.
          const r = next();
          if (r < 0.15) return { event: 'encrypted', data: { event, data } };
          if (r < 0.3) await Promise.resolve();
          else await Bun.sleep(Math.floor(next() * 6));
          if (mine < lastStarted) finishedOutOfOrder++;
          lastStarted = Math.max(lastStarted, mine);
          finished++;
          return { event: 'encrypted', data: { event, data } };
        },
      });
      const clients = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          TestClient.authenticated(url, { token: 'ok', user: `u${i % 3}` }),
        ),
      );
      for (const c of clients) helper.enableClientEncryption({ clientId: c.id });
      for (const c of clients.slice(0, 4)) helper.joinRoom({ clientId: c.id, room: 'r' });
      const expected = new Map<string, number[]>(clients.map((c) => [c.id, []]));
      const total = 240;
      for (let n = 0; n < total; n++) {
        const pick = next();
        if (pick < 0.45) {
          helper.sendToRoom({ room: 'r', event: 'seq', data: { n } });
          for (const c of clients.slice(0, 4)) expected.get(c.id)!.push(n);
        } else if (pick < 0.6) {
          helper.broadcast({ event: 'seq', data: { n } });
          for (const c of clients) expected.get(c.id)!.push(n);
        } else if (pick < 0.85) {
          const c = clients[Math.floor(next() * clients.length)]!;
          helper.sendToClient({ clientId: c.id, event: 'seq', data: { n } });
          expected.get(c.id)!.push(n);
        } else {
          const user = `u${Math.floor(next() * 3)}`;
          helper.sendToUser({ userId: user, event: 'seq', data: { n } });
          for (const [i, c] of clients.entries()) if (`u${i % 3}` === user) expected.get(c.id)!.push(n);
        }
        if (next() < 0.05) await Bun.sleep(1); // some sends in later tasks, while earlier ones are in flight
      }
      for (const c of clients) {
        const want = expected.get(c.id)!;
        await c.until(() => c.all('encrypted').length >= want.length, `${want.length} frames`, 10_000);
        await Bun.sleep(20); // nothing more may come
        expect(c.all('encrypted').map((f) => (f.data as { data: { n: number } }).data.n)).toEqual(want);
        expect(called.get(c.id)).toEqual(want);
      }
      // The scenario is real: calls did finish out of the order they started in.
      expect(finishedOutOfOrder).toBeGreaterThan(20);
      expect(finished).toBeGreaterThan(total);
    },
    30_000,
  );
});

/** `n` authenticated, encrypted clients on fake sockets, all in room `r`. */
function encryptedRoom(n: number): { registry: ClientRegistry; sockets: FakeSocket[] } {
  const registry = new ClientRegistry();
  const sockets = Array.from({ length: n }, (_, i) => new FakeSocket(`c${i}`));
  for (const socket of sockets) {
    const client: IWebSocketClient = {
      id: socket.clientId,
      socket,
      state: WebSocketClientStates.AUTHENTICATED,
      rooms: new Set(),
      backpressured: false,
      encrypted: false,
      connectedAt: 0,
      lastActivity: 0,
    };
    registry.add(client);
    registry.markEncrypted(client);
    registry.join(client, 'r');
  }
  return { registry, sockets };
}

describe('the asynchronous lines (narrow unit test on fake sockets)', () => {
  function setup(batchLimit: number, clients: number) {
    const { registry, sockets } = encryptedRoom(clients);
    /** Per client, the sequence numbers in the order the transformer was called. */
    const calledOrder = new Map<string, number[]>();
    /** Calls in flight, settled by the test in any order it likes. */
    const pending: Array<{ client: string; n: number; settle: () => void; fail: () => void }> = [];
    let inFlight = 0;
    let peak = 0;
    const perClient = new Map<string, number>();
    let perClientPeak = 0;
    const delivery = new LocalDelivery({
      server: new FakeServer(),
      registry,
      batchLimit,
      publishToSelf: false,
      logger: silentLogger,
      transformer: ({ client, data }) =>
        new Promise((resolve, reject) => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          calledOrder.set(client.id, [...(calledOrder.get(client.id) ?? []), (data as { n: number }).n]);
          const mine = (perClient.get(client.id) ?? 0) + 1;
          perClient.set(client.id, mine);
          perClientPeak = Math.max(perClientPeak, mine);
          const done = () => {
            inFlight--;
            perClient.set(client.id, perClient.get(client.id)! - 1);
          };
          pending.push({
            client: client.id,
            n: (data as { n: number }).n,
            settle: () => {
              done();
              resolve({ event: 'x', data });
            },
            fail: () => {
              done();
              reject(new Error('refused'));
            },
          });
        }),
    });
    const corks = sockets.map(() => 0);
    for (const [i, socket] of sockets.entries()) {
      const cork = socket.cork.bind(socket);
      socket.cork = (cb) => {
        corks[i]!++;
        return cork(cb);
      };
    }
    return {
      delivery,
      registry,
      pending,
      sockets,
      corks,
      calledOrder,
      peak: () => peak,
      perClientPeak: () => perClientPeak,
    };
  }

  test('at most batchLimit calls per fan-out and per client; calls start in send order; writes keep it', async () => {
    const t = setup(2, 5);
    const written = t.sockets.map(() => [] as number[]);
    for (const [i, socket] of t.sockets.entries()) {
      socket.send = (frame) => {
        written[i]!.push((JSON.parse(String(frame)) as { data: { n: number } }).data.n);
        return 1;
      };
    }
    for (let n = 0; n < 4; n++) t.delivery.toRoom('r', 'm', { n });
    const next = random(7);
    let failedOnce = false;
    // Settle whatever is in flight in a random order until nothing is left.
    for (let guard = 0; t.pending.length > 0 && guard < 1_000; guard++) {
      const at = Math.floor(next() * t.pending.length);
      const call = t.pending.splice(at, 1)[0]!;
      // One call for c3 fails: that message is dropped for c3 only, and its later ones still come.
      if (!failedOnce && call.client === 'c3' && call.n === 1) {
        failedOnce = true;
        call.fail();
      } else call.settle();
      await Promise.resolve();
      await Promise.resolve();
    }
    expect(t.pending).toEqual([]);
    await Bun.sleep(0); // what settled is written at the end of the turn
    // Four fan-outs of 2 slots each: never more than 8 calls at once, never more than 2 for one client.
    expect(t.peak()).toBeLessThanOrEqual(8);
    expect(t.perClientPeak()).toBeLessThanOrEqual(2);
    for (const calls of t.calledOrder.values()) expect(calls).toEqual([0, 1, 2, 3]);
    for (const [i, got] of written.entries()) expect(got).toEqual(i === 3 ? [0, 2, 3] : [0, 1, 2, 3]);
  });

  test('answers to one client that settle in one turn, in any order, go out in send order in one corked write', async () => {
    const t = setup(10, 3);
    for (let n = 0; n < 4; n++) t.delivery.toRoom('r', 'm', { n });
    // Every call is in flight at once (10 per fan-out and per client allow it).
    expect(t.pending.length).toBe(12);
    for (const call of [...t.pending].reverse()) call.settle();
    t.pending.length = 0;
    await Bun.sleep(0);
    for (const [i, socket] of t.sockets.entries()) {
      expect(socket.sent).toBe(4);
      expect(t.corks[i]).toBe(1);
      expect(socket.lastFrame).toBe(JSON.stringify({ event: 'x', data: { n: 3 } }));
    }
  });

  test('a client gone while its messages wait is neither transformed nor written; the others go on', async () => {
    const t = setup(1, 3);
    for (let n = 0; n < 3; n++) t.delivery.toRoom('r', 'm', { n });
    // c0's first call is in flight; c1 and c2 wait for the window, c0's later messages for it.
    expect(t.pending.map((p) => p.client)).toEqual(['c0']);
    t.registry.get('c1')!.state = WebSocketClientStates.DISCONNECTED;
    for (let guard = 0; t.pending.length > 0 && guard < 100; guard++) {
      t.pending.shift()!.settle();
      await Promise.resolve();
      await Promise.resolve();
    }
    await Bun.sleep(0);
    expect(t.sockets.map((s) => s.sent)).toEqual([3, 0, 3]);
  });

  test('a thenable whose then throws, or a call that throws, drops that message for that client only', async () => {
    const { registry, sockets } = encryptedRoom(2);
    const counters = new ServerCounters();
    const delivery = new LocalDelivery({
      server: new FakeServer(),
      registry,
      batchLimit: 2,
      publishToSelf: false,
      logger: silentLogger,
      counters,
      transformer: ({ client, data }) => {
        const n = (data as { n: number }).n;
        if (client.id === 'c0' && n === 1) {
          return {
            // biome-ignore lint/suspicious/noThenProperty: a thenable that breaks is the point of this test
            then() {
              throw new Error('broken thenable');
            },
          } as unknown as Promise<null>;
        }
        if (client.id === 'c1' && n === 2) throw new Error('refused');
        return Promise.resolve({ event: 'x', data });
      },
    });
    for (let n = 0; n < 4; n++) expect(() => delivery.toRoom('r', 'm', { n })).not.toThrow();
    await Bun.sleep(5);
    expect(sockets.map((s) => s.sent)).toEqual([3, 3]);
    expect(counters.droppedTransformer).toBe(2);
  });
});
