import { afterEach, describe, expect, test } from 'bun:test';
import type { IWebSocketClient } from '../../src/common/types.ts';
import { ECDH } from '../../src/crypto/ecdh.ts';
import { createEcdhEncryption, type IEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from './support.ts';

interface Secrets {
  secret: { text: string; n: number };
}

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

async function encryptedServer(encryption: IEcdhEncryption) {
  server = await startServer({
    requireEncryption: true,
    handshakeFn: encryption.handshakeFn,
    outboundTransformer: encryption.outboundTransformer,
    clientDisconnectedFn: ({ clientId }) => {
      encryption.forget(clientId);
    },
    validateRoomFn: ({ rooms }) => rooms,
  });
  return server;
}

describe('encryption with createEcdhEncryption', () => {
  test('round trip: handshake in auth, key derived from connected, encrypted frames decrypted in order', async () => {
    const encryption = await createEcdhEncryption();
    await encryptedServer(encryption);
    const wire = recordingWebSocket();
    const { client, errors } = trackedClient<Secrets>(server!.url, {
      encryption: true,
      WebSocket: wire.WebSocket,
    });
    const info = await client.ready;

    expect(info.encrypted).toBe(true);
    expect(info.serverPublicKey).toBe(encryption.publicKeyB64);
    expect(typeof info.salt).toBe('string');
    const authFrame = JSON.parse(wire.sent[0]!);
    expect(authFrame.event).toBe('authenticate');
    expect(authFrame.data.token).toBe('ok');
    expect(typeof authFrame.data.publicKey).toBe('string');
    expect(server!.helper.getClients({ id: info.id })?.encrypted).toBe(true);
    expect(encryption.size).toBe(1);

    const received: Secrets['secret'][] = [];
    client.on('secret', (data) => received.push(data));
    await client.join('vault');
    for (let n = 0; n < 20; n++) {
      const data = { text: 'top secret', n };
      if (n % 3 === 0) server!.helper.sendToClient({ clientId: info.id, event: 'secret', data });
      else if (n % 3 === 1) server!.helper.sendToRoom({ room: 'vault', event: 'secret', data });
      else server!.helper.broadcast({ event: 'secret', data });
    }
    await eventually(() => received.length === 20, 3_000, 'decrypted messages');
    expect(received.map((m) => m.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(errors).toEqual([]);

    // On the wire: only ciphertext after `connected`, the join answer included.
    const frames = wire.received.map((raw) => JSON.parse(raw) as { event: string; data: unknown });
    expect(frames[0]!.event).toBe('connected');
    expect(frames.slice(1).every((f) => f.event === 'encrypted')).toBe(true);
    expect(frames.length).toBe(22); // connected, the join answer, 20 messages
    expect(wire.received.some((raw) => raw.includes('top secret'))).toBe(false);
  });

  test('the SDK decrypts both server ciphers alike: native (default) and WebCrypto (nativeCipher: false)', async () => {
    for (const nativeCipher of [true, false]) {
      const encryption = await createEcdhEncryption({ nativeCipher });
      await encryptedServer(encryption);
      const { client, errors } = trackedClient<Secrets>(server!.url, { encryption: true });
      const info = await client.ready;
      const received: number[] = [];
      client.on('secret', (data) => received.push(data.n));
      for (let n = 0; n < 30; n++) {
        if (n % 2 === 0)
          server!.helper.sendToClient({ clientId: info.id, event: 'secret', data: { text: 's', n } });
        else server!.helper.broadcast({ event: 'secret', data: { text: 's', n } });
      }
      await eventually(
        () => received.length === 30,
        3_000,
        `decrypted messages (nativeCipher: ${nativeCipher})`,
      );
      expect(received).toEqual(Array.from({ length: 30 }, (_, n) => n));
      expect(errors).toEqual([]);
      closeAllClients();
      await server!.stop();
      server = undefined;
    }
  });

  test('clientDisconnectedFn + forget drop the session key when the client leaves', async () => {
    const encryption = await createEcdhEncryption();
    await encryptedServer(encryption);
    const { client } = trackedClient(server!.url, { encryption: true });
    await client.ready;
    expect(encryption.size).toBe(1);
    client.close();
    await eventually(() => encryption.size === 0, 2_000, 'forget');
  });

  test('a client without encryption is refused with 4004 and does not retry', async () => {
    const encryption = await createEcdhEncryption();
    await encryptedServer(encryption);
    const wire = recordingWebSocket();
    const { client } = trackedClient(server!.url, { WebSocket: wire.WebSocket });
    await expect(client.ready).rejects.toMatchObject({ code: 'REFUSED' });
    expect(client.lastClose?.code).toBe(4004);
    await Bun.sleep(150);
    expect(wire.opened).toBe(1);
  });

  test('an undecryptable frame is reported and the connection stays usable', async () => {
    const encryption = await createEcdhEncryption();
    await encryptedServer(encryption);
    const { client, errors } = trackedClient<Secrets>(server!.url, { encryption: true });
    const { id } = await client.ready;
    const received: number[] = [];
    client.on('secret', (data) => received.push(data.n));

    const socket = server!.helper.getClients({ id })!.socket;
    // A far-ahead frame number that does not open must not move the counter past the real frames.
    const farAhead = Buffer.from([0x72, 0x63, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]).toString('base64');
    socket.send(JSON.stringify({ event: 'encrypted', data: { iv: farAhead, ct: 'bm90IGNpcGhlcnRleHQ=' } }));
    socket.send(JSON.stringify({ event: 'encrypted', data: 'not even an object' }));
    server!.helper.sendToClient({ clientId: id, event: 'secret', data: { text: 'still fine', n: 1 } });

    await eventually(() => received.length === 1, 2_000, 'message after the bad frames');
    expect(errors.map((e) => e.code)).toEqual(['DECRYPT_FAILED', 'DECRYPT_FAILED']);
    expect(client.state).toBe('connected');
  });

  test('a mismatched hkdfInfo derives a different key: every frame fails to decrypt, and is reported', async () => {
    const encryption = await createEcdhEncryption({ hkdfInfo: 'server-info-v1' });
    await encryptedServer(encryption);
    const { client, errors } = trackedClient<Secrets>(server!.url, {
      encryption: { hkdfInfo: 'other-info' },
    });
    const { id } = await client.ready;
    server!.helper.sendToClient({ clientId: id, event: 'secret', data: { text: 'x', n: 1 } });
    await eventually(() => errors.length === 1, 2_000, 'decrypt failure');
    expect(errors[0]?.code).toBe('DECRYPT_FAILED');

    const matching = trackedClient<Secrets>(server!.url, { encryption: { hkdfInfo: 'server-info-v1' } });
    const other = await matching.client.ready;
    const got: number[] = [];
    matching.client.on('secret', (data) => got.push(data.n));
    server!.helper.sendToClient({ clientId: other.id, event: 'secret', data: { text: 'y', n: 2 } });
    await eventually(() => got.length === 1, 2_000, 'matching hkdfInfo');
  });

  test('encryption requested from a server that does not negotiate it: reported, messages stay plain', async () => {
    server = await startServer();
    const { client, errors } = trackedClient<Secrets>(server.url, { encryption: true });
    const info = await client.ready;
    expect(info.encrypted).toBe(false);
    expect(errors.map((e) => e.code)).toEqual(['HANDSHAKE_FAILED']);
    const got: number[] = [];
    client.on('secret', (data) => got.push(data.n));
    server.helper.sendToClient({ clientId: info.id, event: 'secret', data: { text: 'plain', n: 5 } });
    await eventually(() => got.length === 1, 2_000, 'plain message');
  });
});

describe('createEcdhEncryption (server side, without a network)', () => {
  const fakeClient = (id: string, encrypted: boolean) => ({ id, encrypted }) as IWebSocketClient<object>;

  test('handshakeFn refuses a missing or invalid public key', async () => {
    const encryption = await createEcdhEncryption();
    expect(await encryption.handshakeFn({ clientId: 'a', data: {} })).toBeNull();
    expect(await encryption.handshakeFn({ clientId: 'a', data: { publicKey: 42 } })).toBeNull();
    expect(await encryption.handshakeFn({ clientId: 'a', data: { publicKey: 'AAAA' } })).toBeNull();
    expect(encryption.size).toBe(0);
  });

  for (const nativeCipher of [true, false]) {
    test(`the transformer encrypts for the key of that client; the client side decrypts with the same HKDF (nativeCipher: ${nativeCipher})`, async () => {
      const encryption = await createEcdhEncryption({ publicKeyField: 'pk', nativeCipher });
      const ecdh = ECDH.withAlgorithm();
      const clientKeys = await ecdh.generateKeyPair();
      const answer = await encryption.handshakeFn({ clientId: 'c1', data: { pk: clientKeys.publicKeyB64 } });
      if (!answer) throw new Error('handshake refused');
      const { key } = await ecdh.deriveAESKey({
        privateKey: clientKeys.keyPair.privateKey,
        peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: answer.serverPublicKey }),
        salt: answer.salt,
      });

      const out = await encryption.outboundTransformer({
        client: fakeClient('c1', true),
        event: 'hello',
        data: { a: 1 },
      });
      expect(out?.event).toBe('encrypted');
      const plain = await ecdh.decrypt({ message: out!.data as { iv: string; ct: string }, secret: key });
      expect(JSON.parse(plain)).toEqual({ event: 'hello', data: { a: 1 } });

      // Plain clients are left alone; an encrypted client without a key is never sent plaintext.
      expect(
        await encryption.outboundTransformer({ client: fakeClient('c1', false), event: 'x', data: 1 }),
      ).toBeNull();
      const ghost = () =>
        encryption.outboundTransformer({ client: fakeClient('ghost', true), event: 'x', data: 1 });
      // The native transformer answers synchronously, so it throws; the WebCrypto one rejects.
      if (nativeCipher) expect(ghost).toThrow('no session key');
      else await expect(Promise.resolve(ghost())).rejects.toThrow('no session key');
    });
  }

  test('forget and prune drop keys', async () => {
    const encryption = await createEcdhEncryption();
    const ecdh = ECDH.withAlgorithm();
    for (const clientId of ['a', 'b', 'c']) {
      const { publicKeyB64 } = await ecdh.generateKeyPair();
      await encryption.handshakeFn({ clientId, data: { publicKey: publicKeyB64 } });
    }
    expect(encryption.size).toBe(3);
    expect(encryption.forget('a')).toBe(true);
    expect(encryption.forget('a')).toBe(false);
    expect(encryption.prune(['c'])).toBe(1);
    expect(encryption.size).toBe(1);
  });
});
