import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import { AckAnswers } from '../../src/server/ack-answers.ts';
import { WebSocketAckError } from '../../src/server/acknowledgements.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer, type TTestServerOptions } from '../support/server.ts';
import { closeAllClients, recordingWebSocket, trackedClient } from './support.ts';

let redis: RedisServer;
const servers: ITestServer[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  closeAllClients();
  for (const server of servers.splice(0)) await server.stop();
});

/** A server whose clients must encrypt, each with an ECDH session of its own. */
async function encryptedServer(extra: TTestServerOptions = {}): Promise<ITestServer> {
  const encryption = await createEcdhEncryption();
  const server = await startServer({
    requireEncryption: true,
    handshakeFn: encryption.handshakeFn,
    outboundTransformer: encryption.outboundTransformer,
    clientDisconnectedFn: ({ clientId }) => {
      encryption.forget(clientId);
    },
    ...extra,
  });
  servers.push(server);
  return server;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('acknowledgements to encrypted clients', () => {
  test('the ack request travels inside the ciphertext; the SDK answers once its listener returned', async () => {
    const server = await encryptedServer();
    const wire = recordingWebSocket();
    const { client, errors } = trackedClient<{ invoice: { n: number } }>(server.url, {
      encryption: true,
      WebSocket: wire.WebSocket,
    });
    const info = await client.ready;
    expect(info.encrypted).toBe(true);
    const handled: number[] = [];
    client.on('invoice', async (data) => {
      await Bun.sleep(20);
      handled.push(data.n);
    });
    await server.helper.sendToClient({ clientId: info.id, event: 'invoice', data: { n: 1 }, ack: true });
    expect(handled).toEqual([1]);
    // Nothing but ciphertext carried it: no plain frame with the event or an ack id.
    const plain = wire.received.map((raw) => JSON.parse(raw) as Record<string, unknown>);
    expect(plain.some((frame) => frame.event === 'invoice' || 'ack' in frame)).toBe(false);
    expect(plain.filter((frame) => frame.event === 'encrypted').length).toBe(1);
    expect(errors).toEqual([]);
  });

  test('a listener that never returns gives ACK_TIMEOUT', async () => {
    const server = await encryptedServer();
    const { client } = trackedClient<{ stuck: null }>(server.url, { encryption: true });
    const info = await client.ready;
    client.on('stuck', () => new Promise(() => {}));
    const error = await rejection(
      server.helper.sendToClient({ clientId: info.id, event: 'stuck', data: null, ack: true, timeout: 200 }),
    );
    expect(error).toBeInstanceOf(WebSocketAckError);
    expect((error as WebSocketAckError).code).toBe('ACK_TIMEOUT');
  });

  test('across two instances: the holder encrypts the relayed ack request, the asker resolves', async () => {
    const redisAt = { host: '127.0.0.1', port: redis.port };
    const holder = await encryptedServer({ redis: redisAt });
    const asker = await encryptedServer({ redis: redisAt });
    const { client } = trackedClient<{ note: { text: string }; never: null }>(holder.url, {
      encryption: true,
    });
    const info = await client.ready;
    const seen: string[] = [];
    client.on('note', (data) => {
      seen.push(data.text);
    });
    await asker.helper.sendToClient({ clientId: info.id, event: 'note', data: { text: 'hi' }, ack: true });
    expect(seen).toEqual(['hi']);
    client.on('never', () => new Promise(() => {}));
    const error = await rejection(
      asker.helper.sendToClient({ clientId: info.id, event: 'never', data: null, ack: true, timeout: 300 }),
    );
    expect((error as WebSocketAckError).code).toBe('ACK_TIMEOUT');
  });

  test('an encrypted room spanning two instances: the request inside the ciphertext, every answer collected', async () => {
    const redisAt = { host: '127.0.0.1', port: redis.port };
    const a = await encryptedServer({ redis: redisAt });
    const b = await encryptedServer({ redis: redisAt });
    const wires = [recordingWebSocket(), recordingWebSocket()];
    const joined: Array<{ id: string; sent: string[] }> = [];
    for (const [i, at] of [a, b].entries()) {
      const wire = wires[i]!;
      const { client } = trackedClient<{ quote: { item: string } }>(at.url, {
        encryption: true,
        WebSocket: wire.WebSocket,
      });
      const info = await client.ready;
      at.helper.joinRoom({ clientId: info.id, room: 'market' });
      client.on('quote', async (data) => ({ item: data.item, price: 10 + i }));
      joined.push({ id: info.id, sent: wire.sent });
    }
    const result = await a.helper.send({
      destination: 'market',
      payload: { topic: 'quote', data: { item: 'tea' } },
      ack: true,
      timeout: 5_000,
    });
    expect(result).toBeInstanceOf(AckAnswers);
    const { answers, missing } = result as AckAnswers;
    expect(Object.fromEntries(answers)).toEqual({
      [joined[0]!.id]: { item: 'tea', price: 10 },
      [joined[1]!.id]: { item: 'tea', price: 11 },
    });
    expect(missing).toEqual([]);
    // The request reached each client only inside the ciphertext; the answer went back as every
    // client → server frame does (plain JSON inside the socket, see docs/security.md).
    for (const { sent } of joined) expect(sent.filter((frame) => frame.includes('"ws:ack"')).length).toBe(1);
    for (const wire of wires) {
      expect(wire.received.some((frame) => frame.includes('"quote"') || frame.includes('"ack"'))).toBe(false);
    }
  });
});
