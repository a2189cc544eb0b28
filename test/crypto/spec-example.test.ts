import { afterEach, describe, expect, test } from 'bun:test';
import { ECDH } from '../../src/index.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';

// The guides' encryption example, step for step: `deriveAESKey`'s whole result kept per client and
// handed to `encrypt` as `secret`, an awaited WebCrypto `encrypt` of `{ event, data }` in the
// transformer. It must run as written, and the SDK must read everything it sends, answers included.

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

describe("the specification's encryption example", () => {
  test('runs as written: publications, join answers and request replies reach the SDK encrypted', async () => {
    const ecdh = ECDH.withAlgorithm();
    const serverKeyPair = await ecdh.generateKeyPair();
    const clientKeys = new Map<string, Awaited<ReturnType<typeof ecdh.deriveAESKey>>>();

    server = await startServer({
      requireEncryption: true,
      validateRoomFn: ({ rooms }) => rooms,
      messageHandler: ({ message }) => ({ echo: message.data }),
      handshakeFn: async ({ clientId, data }) => {
        const clientPubKeyB64 = data.publicKey as string;
        if (!clientPubKeyB64) return null;
        const peerKey = await ecdh.importPublicKey({ rawKeyB64: clientPubKeyB64 });
        const salt = crypto.getRandomValues(new Uint8Array(32));
        const saltB64 = Buffer.from(salt).toString('base64');
        const aesKey = await ecdh.deriveAESKey({
          privateKey: serverKeyPair.keyPair.privateKey,
          peerPublicKey: peerKey,
          salt,
        });
        clientKeys.set(clientId, aesKey);
        return { serverPublicKey: serverKeyPair.publicKeyB64, salt: saltB64 };
      },
      outboundTransformer: async ({ client, event, data }) => {
        if (!client.encrypted) return null;
        const aesKey = clientKeys.get(client.id);
        if (!aesKey) return null;
        const encrypted = await ecdh.encrypt({ message: JSON.stringify({ event, data }), secret: aesKey });
        return { event: 'encrypted', data: encrypted };
      },
    });

    const wire = recordingWebSocket();
    const { client, errors } = trackedClient<{ news: { n: number }; ask: { q: number } }>(server.url, {
      encryption: true,
      WebSocket: wire.WebSocket,
    });
    const info = await client.ready;
    expect(info.encrypted).toBe(true);
    const got: number[] = [];
    client.on('news', (data) => {
      got.push(data.n);
    });
    expect(await client.join('desk')).toEqual(['desk']);
    for (let n = 0; n < 10; n++) server.helper.sendToRoom({ room: 'desk', event: 'news', data: { n } });
    await eventually(() => got.length === 10, 3_000, 'ten publications');
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The example seals only `{ event, data }`: the request id rides outside, and the answer still matches.
    expect(await client.request('ask', { q: 1 })).toEqual({ echo: { q: 1 } });
    expect(errors).toEqual([]);
    expect(wire.received.slice(1).every((raw) => JSON.parse(raw).event === 'encrypted')).toBe(true);
  });

  test('encrypt and decrypt take the CryptoKey or the whole { key, salt } alike', async () => {
    const ecdh = ECDH.withAlgorithm();
    const alice = await ecdh.generateKeyPair();
    const bob = await ecdh.generateKeyPair();
    const derived = await ecdh.deriveAESKey({
      privateKey: alice.keyPair.privateKey,
      peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: bob.publicKeyB64 }),
    });
    expect(Object.keys(derived).sort()).toEqual(['key', 'salt']); // the documented shape stays
    const sealed = await ecdh.encrypt({ message: 'hello', secret: derived });
    expect(await ecdh.decrypt({ message: sealed, secret: derived.key })).toBe('hello');
    const again = await ecdh.encrypt({ message: 'again', secret: derived.key });
    expect(await ecdh.decrypt({ message: again, secret: derived })).toBe('again');
  });
});
