import { afterEach, describe, expect, test } from 'bun:test';
import { ECDH } from '../../src/crypto/ecdh.ts';
import { createEcdhEncryption, generateEncryptionKey } from '../../src/crypto/ecdh-session.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, errorCodes, eventually, trackedClient } from './support.ts';

// An active man in the middle between the SDK and the server: a WebSocket proxy that sees and
// may rewrite every frame. Without a pinned key it swaps the key exchange for its own and reads
// everything (the attack is real); with `serverPublicKey` pinned it reads nothing, not even the
// credentials, and nothing it injects, replays or forges reaches the application.

const TOKEN = 'T0KEN-7f3a9c';
const SECRET = 'cl4ssified';

let server: ITestServer | undefined;
let proxy: ReturnType<typeof Bun.serve> | undefined;
afterEach(async () => {
  closeAllClients();
  proxy?.stop(true);
  proxy = undefined;
  await server?.stop();
  server = undefined;
});

type TFrame = { event: string; data?: any; [key: string]: unknown };

interface IAttacker {
  /** Rewrites (or drops, with null) a frame going to the server. */
  toServer(frame: TFrame): Promise<TFrame | null> | TFrame | null;
  /** Rewrites (or drops) a frame going to the client. */
  toClient(frame: TFrame): Promise<TFrame | null> | TFrame | null;
  /** Every text the attacker could read: frames in clear and what it decrypted. */
  read: string[];
  /** Lets the test push frames to the client. */
  inject?: (frame: string) => void;
}

/** A WebSocket proxy on 127.0.0.1 that hands every frame to the attacker, in order. */
function manInTheMiddle(target: string, attacker: IAttacker): string {
  type TData = { upstream?: WebSocket; chain: Promise<void> };
  proxy = Bun.serve<TData>({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req, srv) {
      return srv.upgrade(req, { data: { chain: Promise.resolve() } })
        ? undefined
        : new Response('no', { status: 400 });
    },
    websocket: {
      open(ws) {
        const upstream = new WebSocket(target);
        const opened = new Promise<void>((resolve) => {
          upstream.onopen = () => resolve();
        });
        ws.data.upstream = upstream;
        ws.data.chain = opened;
        attacker.inject = (frame) => ws.send(frame);
        upstream.onmessage = (event) => {
          ws.data.chain = ws.data.chain.then(async () => {
            const text = String(event.data);
            attacker.read.push(text);
            const out = await attacker.toClient(JSON.parse(text));
            if (out && ws.readyState === 1) ws.send(JSON.stringify(out));
          });
        };
        upstream.onclose = (event) => {
          void ws.data.chain.then(() => ws.close(event.code, event.reason));
        };
      },
      message(ws, message) {
        ws.data.chain = ws.data.chain.then(async () => {
          const text = String(message);
          attacker.read.push(text);
          const out = await attacker.toServer(JSON.parse(text));
          if (out && ws.data.upstream?.readyState === 1) ws.data.upstream.send(JSON.stringify(out));
        });
      },
      close(ws) {
        ws.data.upstream?.close();
      },
    },
  });
  return `ws://127.0.0.1:${proxy.port}/ws`;
}

/** The classic attack: its own key towards both sides, decrypting and re-encrypting in between. */
async function keySwapper(): Promise<IAttacker> {
  const ecdh = ECDH.withAlgorithm();
  const mine = await ecdh.generateKeyPair();
  let clientKey: CryptoKey | undefined;
  let serverKey: CryptoKey | undefined;
  let clientPublicKey = '';
  const attacker: IAttacker = {
    read: [],
    toServer(frame) {
      if (frame.event === 'authenticate') {
        clientPublicKey = frame.data.publicKey;
        return { ...frame, data: { ...frame.data, publicKey: mine.publicKeyB64 } };
      }
      return frame;
    },
    async toClient(frame) {
      if (frame.event === 'connected' && frame.data.serverPublicKey) {
        const towardsServer = await ecdh.deriveAESKey({
          privateKey: mine.keyPair.privateKey,
          peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: frame.data.serverPublicKey }),
          salt: frame.data.salt,
        });
        serverKey = towardsServer.key;
        const towardsClient = await ecdh.deriveAESKey({
          privateKey: mine.keyPair.privateKey,
          peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: clientPublicKey }),
        });
        clientKey = towardsClient.key;
        return {
          ...frame,
          data: { ...frame.data, serverPublicKey: mine.publicKeyB64, salt: towardsClient.salt },
        };
      }
      if (frame.event === 'encrypted' && serverKey && clientKey) {
        const plain = await ecdh.decrypt({ message: frame.data, secret: serverKey });
        attacker.read.push(plain);
        // Same IV again (the SDK checks the frame number in it), under the client's key.
        const iv = Uint8Array.from(atob(frame.data.iv), (c) => c.charCodeAt(0));
        const ct = await crypto.subtle.encrypt(
          { name: 'AES-GCM', iv },
          clientKey,
          new TextEncoder().encode(plain),
        );
        const sealed = btoa(String.fromCharCode(...new Uint8Array(ct)));
        return { ...frame, data: { iv: frame.data.iv, ct: sealed } };
      }
      return frame;
    },
  };
  return attacker;
}

async function pinnedServer() {
  const longTerm = await generateEncryptionKey();
  const encryption = await createEcdhEncryption({ privateKey: longTerm.privateKey });
  expect(encryption.publicKeyB64).toBe(longTerm.publicKey);
  server = await startServer({
    requireEncryption: true,
    handshakeFn: encryption.handshakeFn,
    outboundTransformer: encryption.outboundTransformer,
    authenticateFn: encryption.authenticate((data) => (data.token === TOKEN ? { userId: 'alice' } : null)),
    validateRoomFn: ({ rooms }) => rooms,
    messageHandler: ({ message }) => ({ echo: message.data }),
  });
  return { longTerm, encryption };
}

function readSecrets(attacker: IAttacker): string[] {
  return attacker.read.filter((text) => text.includes(SECRET) || text.includes(TOKEN));
}

describe('an active man in the middle', () => {
  test('without a pinned key it swaps the keys and reads everything (the attack the option stops)', async () => {
    const { longTerm } = await pinnedServer();
    const attacker = await keySwapper();
    const url = manInTheMiddle(server!.url, attacker);
    const { client } = trackedClient<{ note: string }>(url, { encryption: true, auth: { token: TOKEN } });
    const info = await client.ready;
    expect(info.encrypted).toBe(true);
    expect(info.serverPublicKey).not.toBe(longTerm.publicKey);
    const got: string[] = [];
    client.on('note', (data) => {
      got.push(data);
    });
    server!.helper.sendToClient({ clientId: info.id, event: 'note', data: SECRET });
    await eventually(() => got.length === 1, 3_000, 'the message through the attacker');
    expect(readSecrets(attacker).length).toBeGreaterThanOrEqual(2); // the token and the message
  });

  test('with the key pinned, swapping the server key ends the attempt before anything is read', async () => {
    const { longTerm } = await pinnedServer();
    const attacker = await keySwapper();
    // The swapper replaces the client's key in authenticate: the sealed credentials no longer open.
    const url = manInTheMiddle(server!.url, attacker);
    const { client, errors } = trackedClient(url, {
      encryption: { serverPublicKey: longTerm.publicKey },
      auth: { token: TOKEN },
      reconnect: false,
    });
    await expect(client.ready).rejects.toBeDefined();
    expect(client.lastClose?.code).toBe(4003);
    expect(readSecrets(attacker)).toEqual([]);

    // Leaving authenticate alone and swapping only the answer: the SDK refuses the key.
    const swapOnlyTheAnswer = await keySwapper();
    const passAuth: IAttacker = {
      read: swapOnlyTheAnswer.read,
      toServer: (frame) => {
        void swapOnlyTheAnswer.toServer(frame); // it learns the client's key, the server gets the original
        return frame;
      },
      toClient: (frame) => swapOnlyTheAnswer.toClient(frame),
    };
    proxy?.stop(true);
    const url2 = manInTheMiddle(server!.url, passAuth);
    const second = trackedClient(url2, {
      encryption: { serverPublicKey: longTerm.publicKey },
      auth: { token: TOKEN },
      reconnect: false,
    });
    await expect(second.client.ready).rejects.toBeDefined();
    expect(errorCodes(second.errors)).toContain('HANDSHAKE_FAILED');
    expect(readSecrets(passAuth)).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
  });

  test('with the key pinned, a relaying attacker reads nothing, and what it injects, replays or forges is dropped', async () => {
    const { longTerm } = await pinnedServer();
    const ciphertexts: TFrame[] = [];
    const attacker: IAttacker = {
      read: [],
      toServer: (frame) => frame,
      toClient: (frame) => {
        if (frame.event === 'encrypted') ciphertexts.push(frame);
        return frame;
      },
    };
    const url = manInTheMiddle(server!.url, attacker);
    const { client, errors } = trackedClient<{ note: string; ask: string }>(url, {
      encryption: { serverPublicKey: longTerm.publicKey },
      auth: { token: TOKEN },
    });
    const info = await client.ready;
    expect(info.encrypted).toBe(true);
    expect(info.serverPublicKey).toBe(longTerm.publicKey);
    const got: string[] = [];
    client.on('note', (data) => {
      got.push(data);
    });
    expect(await client.request('ask', SECRET)).toEqual({ echo: SECRET });
    for (let n = 0; n < 5; n++)
      server!.helper.sendToClient({ clientId: info.id, event: 'note', data: `${SECRET}-${n}` });
    await eventually(() => got.length === 5, 3_000, 'five messages');

    attacker.inject!(JSON.stringify({ event: 'note', data: 'forged in clear' }));
    attacker.inject!(JSON.stringify(ciphertexts[1])); // an old frame again
    attacker.inject!(
      JSON.stringify({ event: 'encrypted', data: { ...ciphertexts[2]!.data, ct: ciphertexts[3]!.data.ct } }),
    );
    const farAhead = btoa(String.fromCharCode(0x72, 0x63, 0, 1, 0, 0, 0, 0, 0, 0, 0x7f, 0));
    attacker.inject!(
      JSON.stringify({ event: 'encrypted', data: { iv: farAhead, ct: ciphertexts[4]!.data.ct } }),
    );
    server!.helper.sendToClient({ clientId: info.id, event: 'note', data: 'after' });
    await eventually(() => got.length === 6, 3_000, 'the real message after the attempts');

    expect(got).toEqual([0, 1, 2, 3, 4].map((n) => `${SECRET}-${n}`).concat('after'));
    expect(errorCodes(errors).sort()).toEqual([
      'DECRYPT_FAILED',
      'PLAINTEXT_FRAME',
      'REPLAYED_FRAME',
      'REPLAYED_FRAME',
    ]);
    // The credentials went sealed; of what the server sent, nothing is readable. The SDK's own
    // request travels in clear: client → server frames are TLS's to protect (docs/security.md).
    expect(readSecrets(attacker)).toEqual([JSON.stringify({ event: 'ask', data: SECRET, id: 'q1' })]);
    const auth = JSON.parse(attacker.read.find((text) => text.includes('"authenticate"'))!);
    expect(Object.keys(auth.data).sort()).toEqual(['publicKey', 'sealed']);
  });
});
