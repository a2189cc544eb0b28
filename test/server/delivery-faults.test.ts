// Per-client writes and native publishes when a socket or the server throws:
// the caller gets no exception from a broken recipient, the others still get
// the message, and no excluded client is left unsubscribed from its room.
import { describe, expect, test } from 'bun:test';
import { ClientRegistry } from '../../src/server/client-registry.ts';
import { LocalDelivery } from '../../src/server/local-delivery.ts';
import { FakeServer, FakeSocket } from '../support/fake-socket.ts';
import { recordingLogger, serverPerTest } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

const serve = serverPerTest();

/** Makes the server side of `clientId`'s real Bun socket throw on every send. */
function breakSend(helper: Awaited<ReturnType<typeof serve>>['helper'], clientId: string): void {
  const socket = helper.getClients({ id: clientId })!.socket;
  Object.defineProperty(socket, 'send', {
    configurable: true,
    value: () => {
      throw new Error('send exploded');
    },
  });
}

describe('a socket whose send throws (real server and clients)', () => {
  test('sendToClient and sendToUser do not throw; it is logged; the other sessions receive', async () => {
    const logger = recordingLogger();
    const { url, helper } = await serve({ logger });
    const sessions = await Promise.all(
      [0, 1, 2].map(() => TestClient.authenticated(url, { token: 'ok', user: 'ada' })),
    );
    const [broken, ...healthy] = sessions as [TestClient, TestClient, TestClient];
    breakSend(helper, broken.id);

    expect(() => helper.sendToClient({ clientId: broken.id, event: 'direct', data: 1 })).not.toThrow();
    expect(() => helper.sendToUser({ userId: 'ada', event: 'for-ada', data: 2 })).not.toThrow();
    for (const client of healthy) expect((await client.next('for-ada')).data).toBe(2);
    await expectSilence(broken, 'for-ada');
    const failures = logger.lines.filter((line) =>
      line.message.includes(`socket send failed for client ${broken.id}`),
    );
    expect(failures.map((line) => line.level)).toEqual(['error', 'error']);

    // The broken client's own frames are answered through the same write: nothing throws either.
    expect(() => helper.onClientMessage({ clientId: broken.id, raw: 'not json' })).not.toThrow();
    expect(helper.getClients().size).toBe(3);
  });

  test('send() to the broken client does not throw; one-by-one room delivery reaches the next client', async () => {
    const { url, helper } = await serve();
    const [first, second] = (await Promise.all([0, 1].map(() => TestClient.authenticated(url)))) as [
      TestClient,
      TestClient,
    ];
    // Encrypted clients (here without a transformer) are written to one by one, not by native fan-out.
    for (const client of [first, second]) {
      helper.joinRoom({ clientId: client.id, room: 'r' });
      helper.enableClientEncryption({ clientId: client.id });
    }
    breakSend(helper, first.id);
    expect(() =>
      helper.send({ destination: first.id, payload: { topic: 'direct', data: 'x' } }),
    ).not.toThrow();
    expect(() => helper.sendToRoom({ room: 'r', event: 'one-by-one', data: 'y' })).not.toThrow();
    expect((await second.next('one-by-one')).data).toBe('y');
  });
});

describe('a native publish that throws while clients are excluded', () => {
  test('real server: the error reaches the caller and the excluded clients are subscribed again', async () => {
    const { url, helper, server } = await serve();
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.authenticated(url)));
    for (const client of clients) helper.joinRoom({ clientId: client.id, room: 'r' });
    const [a, b, c] = clients as [TestClient, TestClient, TestClient];

    const publish = server.publish;
    Object.defineProperty(server, 'publish', {
      configurable: true,
      value: () => {
        throw new Error('publish exploded');
      },
    });
    try {
      expect(() => helper.sendToRoom({ room: 'r', event: 'lost', data: 0, exclude: [a.id, b.id] })).toThrow(
        'publish exploded',
      );
    } finally {
      Object.defineProperty(server, 'publish', { configurable: true, value: publish });
    }
    for (const client of [a, b]) {
      expect(helper.getClients({ id: client.id })!.socket.isSubscribed('r')).toBe(true);
    }
    helper.sendToRoom({ room: 'r', event: 'after', data: 1 });
    for (const client of [a, b, c]) expect((await client.next('after')).data).toBe(1);
  });

  test('unit: one socket refusing to re-subscribe does not stop the others, and is logged', () => {
    const server = new FakeServer();
    const registry = new ClientRegistry();
    const logger = recordingLogger();
    const delivery = new LocalDelivery({ server, registry, batchLimit: 10, publishToSelf: false, logger });
    const sockets = ['a', 'b', 'c'].map((id) => new FakeSocket(id));
    for (const socket of sockets) {
      server.attach(socket);
      registry.add({ id: socket.clientId, socket, encrypted: false, rooms: new Set(['r']) } as never);
      socket.subscribe('r');
    }
    server.publish = () => {
      throw new Error('publish exploded');
    };
    const [a, b] = sockets as [FakeSocket, FakeSocket];
    a.subscribe = () => {
      throw new Error('subscribe exploded');
    };
    expect(() => delivery.toRoom('r', 'm', 1, ['a', 'b'])).toThrow('publish exploded');
    expect(b.isSubscribed('r')).toBe(true);
    expect(logger.lines.some((line) => line.message.includes('could not re-subscribe client a to r'))).toBe(
      true,
    );
  });
});
