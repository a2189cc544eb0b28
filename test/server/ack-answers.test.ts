import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { AckAnswers } from '../../src/server/ack-answers.ts';
import { WebSocketAckError } from '../../src/server/acknowledgements.ts';
import { closeAllClients, trackedClient } from '../client/support.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer, type TTestServerOptions } from '../support/server.ts';

/**
 * Acknowledgements with answers (issue 18, point 4): real Bun.serve instances, real SDK clients,
 * two instances on one real redis-server for the cross-instance cases.
 */

let redis: RedisServer;
const servers: ITestServer[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
}, 20_000);
afterAll(async () => {
  await redis.stop();
}, 20_000);
afterEach(async () => {
  closeAllClients();
  for (const server of servers.splice(0)) await server.stop();
});

async function server(opts: TTestServerOptions = {}): Promise<ITestServer> {
  const started = await startServer(opts);
  servers.push(started);
  return started;
}

/** Two instances on the same redis-server. */
async function pair(extra: TTestServerOptions = {}): Promise<[ITestServer, ITestServer]> {
  const at = { redis: { host: '127.0.0.1', port: redis.port }, ...extra };
  return [await server(at), await server(at)];
}

type TEvents = { ask: { n: number }; never: null; big: null };

/** A connected SDK client (userId `user`) of `at`, put in `rooms` by the server. */
async function member(at: ITestServer, user: string, rooms: string[] = []) {
  const tracked = trackedClient<TEvents>(at.url, { auth: { token: 'ok', user } });
  const info = await tracked.client.ready;
  for (const room of rooms) at.helper.joinRoom({ clientId: info.id, room });
  return { ...tracked, id: info.id };
}

async function rejection(promise: Promise<unknown>): Promise<WebSocketAckError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WebSocketAckError);
    return error as WebSocketAckError;
  }
  throw new Error('expected a rejection');
}

function asAnswers(value: unknown): AckAnswers {
  expect(value).toBeInstanceOf(AckAnswers);
  return value as AckAnswers;
}

describe('answers from one client', () => {
  test('sendToClient and send to a client id resolve with what the listener returned (value or promise)', async () => {
    const one = await server();
    const alice = await member(one, 'alice');
    alice.client.on('ask', (data) => ({ doubled: data.n * 2 }));
    expect(
      await one.helper.sendToClient({ clientId: alice.id, event: 'ask', data: { n: 2 }, ack: true }),
    ).toEqual({ doubled: 4 });
    alice.client.off('ask');
    alice.client.on('ask', async (data) => {
      await Bun.sleep(20);
      return `late ${data.n}`;
    });
    expect(
      await one.helper.send({ destination: alice.id, payload: { topic: 'ask', data: { n: 3 } }, ack: true }),
    ).toBe('late 3');
    expect(alice.errors).toEqual([]);
  });

  test('several listeners: the first value that is not undefined; none: undefined', async () => {
    const one = await server();
    const alice = await member(one, 'alice');
    alice.client.on('ask', () => undefined);
    alice.client.on('ask', async () => {
      throw new Error('ignored: a rejected listener gives no answer');
    });
    alice.client.on('ask', async () => null);
    alice.client.on('ask', () => 'second');
    expect(
      await one.helper.sendToClient({ clientId: alice.id, event: 'ask', data: { n: 1 }, ack: true }),
    ).toBe(null);
    alice.client.off('ask');
    alice.client.on('ask', () => {});
    expect(
      await one.helper.sendToClient({ clientId: alice.id, event: 'ask', data: { n: 1 }, ack: true }),
    ).toBeUndefined();
  });

  test('across instances: sendToClient and send to a client id held elsewhere resolve with the answer', async () => {
    const [a, b] = await pair();
    const bob = await member(b, 'bob');
    bob.client.on('ask', (data) => data.n + 1);
    expect(await a.helper.sendToClient({ clientId: bob.id, event: 'ask', data: { n: 41 }, ack: true })).toBe(
      42,
    );
    expect(
      await a.helper.send({ destination: bob.id, payload: { topic: 'ask', data: { n: 9 } }, ack: true }),
    ).toBe(10);
    // A client id held elsewhere whose listener never returns: ACK_TIMEOUT, as for sendToClient.
    bob.client.on('never', () => new Promise(() => {}));
    const error = await rejection(
      a.helper.send({
        destination: bob.id,
        payload: { topic: 'never', data: null },
        ack: true,
        timeout: 300,
      }),
    );
    expect(error.code).toBe('ACK_TIMEOUT');
  });

  test('an answer over MAX_ACK_ANSWER_BYTES rejects with ANSWER_TOO_LARGE, locally and relayed', async () => {
    const [a, b] = await pair();
    const near = await member(a, 'near');
    const far = await member(b, 'far');
    for (const { client } of [near, far]) client.on('big', () => 'x'.repeat(20_000));
    const local = await rejection(
      a.helper.sendToClient({ clientId: near.id, event: 'big', data: null, ack: true }),
    );
    expect(local.code).toBe('ANSWER_TOO_LARGE');
    const relayed = await rejection(
      a.helper.sendToClient({ clientId: far.id, event: 'big', data: null, ack: true }),
    );
    expect(relayed.code).toBe('ANSWER_TOO_LARGE');
  });
});

describe('answers from many', () => {
  test('a room on one instance: the answers by client id, a client that does not answer is missing', async () => {
    const one = await server();
    const alice = await member(one, 'alice', ['desk']);
    const bob = await member(one, 'bob', ['desk']);
    const mute = await member(one, 'mute', ['desk']);
    await member(one, 'outsider');
    alice.client.on('ask', () => 'a');
    bob.client.on('ask', async () => 'b');
    mute.client.on('ask', () => new Promise(() => {}));
    const started = performance.now();
    const result = asAnswers(
      await one.helper.send({
        destination: 'desk',
        payload: { topic: 'ask', data: { n: 1 } },
        ack: true,
        timeout: 400,
      }),
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(350);
    expect(Object.fromEntries(result.answers)).toEqual({ [alice.id]: 'a', [bob.id]: 'b' });
    expect(result.missing).toEqual([mute.id]);
    expect(result.instances).toBe(1);
    expect(result.complete).toBe(true);
    expect(result.notAwaited).toBe(0);
  });

  test('a room spanning two instances resolves as soon as every recipient answered', async () => {
    const [a, b] = await pair();
    const near = await member(a, 'near', ['ops']);
    const far1 = await member(b, 'far1', ['ops']);
    const far2 = await member(b, 'far2', ['ops']);
    for (const { client, id } of [near, far1, far2]) client.on('ask', (data) => `${id}:${data.n}`);
    const started = performance.now();
    const result = asAnswers(
      await a.helper.send({
        destination: 'ops',
        payload: { topic: 'ask', data: { n: 5 } },
        ack: true,
        timeout: 5_000,
      }),
    );
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(Object.fromEntries(result.answers)).toEqual({
      [near.id]: `${near.id}:5`,
      [far1.id]: `${far1.id}:5`,
      [far2.id]: `${far2.id}:5`,
    });
    expect(result.missing).toEqual([]);
    expect(result.instances).toBe(2);
    expect(result.complete).toBe(true);
  });

  test('across instances, a remote client that does not answer (or answers too large) is missing', async () => {
    const [a, b] = await pair();
    const near = await member(a, 'near', ['ops']);
    const silent = await member(b, 'silent', ['ops']);
    const big = await member(b, 'big', ['ops']);
    near.client.on('ask', () => 1);
    // No listener at all: the SDK does not acknowledge.
    big.client.on('ask', () => 'x'.repeat(20_000));
    const result = asAnswers(
      await a.helper.send({
        destination: 'ops',
        payload: { topic: 'ask', data: { n: 0 } },
        ack: true,
        timeout: 600,
      }),
    );
    expect(Object.fromEntries(result.answers)).toEqual({ [near.id]: 1 });
    expect(result.missing.sort()).toEqual([silent.id, big.id].sort());
    expect(result.complete).toBe(true);
  });

  test('a user with two connections, one on each instance; exclude leaves one out', async () => {
    const [a, b] = await pair();
    const first = await member(a, 'carol');
    const second = await member(b, 'carol');
    const other = await member(b, 'dave');
    for (const { client, id } of [first, second, other]) client.on('ask', () => id);
    const result = asAnswers(
      await a.helper.send({
        destination: { userId: 'carol' },
        payload: { topic: 'ask', data: { n: 1 } },
        ack: true,
      }),
    );
    expect(Object.fromEntries(result.answers)).toEqual({ [first.id]: first.id, [second.id]: second.id });
    expect(result.missing).toEqual([]);
    const fromB = asAnswers(
      await b.helper.send({
        destination: { userId: 'carol' },
        payload: { topic: 'ask', data: { n: 2 } },
        ack: true,
        exclude: [first.id],
      }),
    );
    expect([...fromB.answers.keys()]).toEqual([second.id]);
  });

  test('everyone on every instance (no destination)', async () => {
    const [a, b] = await pair();
    const clients = [
      await member(a, 'u1'),
      await member(a, 'u2'),
      await member(b, 'u3'),
      await member(b, 'u4'),
    ];
    for (const { client } of clients) client.on('ask', (data) => data.n * 10);
    const result = asAnswers(await b.helper.send({ payload: { topic: 'ask', data: { n: 7 } }, ack: true }));
    expect([...result.answers.keys()].sort()).toEqual(clients.map((c) => c.id).sort());
    expect([...result.answers.values()]).toEqual([70, 70, 70, 70]);
    expect(result.instances).toBe(2);
    expect(result.complete).toBe(true);
  });

  test('a room nobody is in resolves at once with no answers; a history room is refused', async () => {
    const [a] = await pair();
    const started = performance.now();
    const result = asAnswers(
      await a.helper.send({ destination: 'empty', payload: { topic: 'ask', data: { n: 1 } }, ack: true }),
    );
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(result.answers.size).toBe(0);
    expect(result.missing).toEqual([]);
    const withHistory = await server({
      historyFn: ({ room }) => (room === 'log' ? { size: 10, ttl: 60_000 } : null),
    });
    await expect(
      withHistory.helper.send({ destination: 'log', payload: { topic: 'ask', data: { n: 1 } }, ack: true }),
    ).rejects.toThrow('rooms that keep history');
  });

  test('with busSecret the call, the reports and the answers are signed and still collected', async () => {
    const [a, b] = await pair({ busSecret: 'ack-answers-secret-0123456789abcdef' });
    const near = await member(a, 'near', ['signed']);
    const far = await member(b, 'far', ['signed']);
    for (const { client, id } of [near, far]) client.on('ask', () => id);
    const result = asAnswers(
      await a.helper.send({ destination: 'signed', payload: { topic: 'ask', data: { n: 1 } }, ack: true }),
    );
    expect(Object.fromEntries(result.answers)).toEqual({ [near.id]: near.id, [far.id]: far.id });
    expect(result.complete).toBe(true);
  });
});
