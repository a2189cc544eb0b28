import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { IWebSocketClient } from '../../src/common/types.ts';
import { ECDH as WebCryptoECDH } from '../../src/crypto/ecdh.ts';
import { createEcdhEncryption, DEFAULT_HKDF_INFO, ECDH, type IEncryptedPayload } from '../../src/index.ts';

/** Server side with raw key bytes, peer side with a WebCrypto key, both from one exchange. */
async function rawAndWebCryptoKeys(ecdh: ECDH) {
  const server = await ecdh.generateKeyPair();
  const peer = await ecdh.generateKeyPair();
  const raw = await ecdh.deriveAESKeyBytes({
    privateKey: server.keyPair.privateKey,
    peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: peer.publicKeyB64 }),
  });
  const web = await ecdh.deriveAESKey({
    privateKey: peer.keyPair.privateKey,
    peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: server.publicKeyB64 }),
    salt: raw.salt,
  });
  return { server, peer, raw: raw.key, salt: raw.salt, web: web.key };
}

function encryptedClient(id: string): IWebSocketClient<object> {
  return {
    id,
    socket: {} as IWebSocketClient['socket'],
    state: 'authenticated',
    rooms: new Set(),
    backpressured: false,
    encrypted: true,
    connectedAt: 0,
    lastActivity: 0,
  };
}

describe('ECDH native cipher (raw keys)', () => {
  const ecdh = ECDH.withAlgorithm();
  // The browser SDK's class: WebCrypto only, no node:crypto.
  const browser = WebCryptoECDH.withAlgorithm();

  test('the server ECDH keeps the WebCrypto options and methods, and adds the raw-key ones', async () => {
    expect(ecdh).toBeInstanceOf(WebCryptoECDH);
    expect(ecdh.hkdfInfo).toBe(DEFAULT_HKDF_INFO);
    expect(ECDH.withAlgorithm({ hkdfInfo: 'app-v2' }).hkdfInfo).toBe('app-v2');
    expect(() => ECDH.withAlgorithm({ algorithm: 'x25519' as never })).toThrow('Unsupported algorithm');
    expect(() => ECDH.withAlgorithm({ hkdfInfo: '' })).toThrow('hkdfInfo must be a non-empty string');
    const { server, raw, salt, peer } = await rawAndWebCryptoKeys(ecdh);
    expect(raw).toBeInstanceOf(Uint8Array);
    expect(raw.length).toBe(32);
    expect(Buffer.from(salt, 'base64').length).toBe(32);
    // A given salt, as base64 or as bytes, derives the same key again.
    for (const given of [salt, new Uint8Array(Buffer.from(salt, 'base64'))]) {
      const again = await ecdh.deriveAESKeyBytes({
        privateKey: server.keyPair.privateKey,
        peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: peer.publicKeyB64 }),
        salt: given,
      });
      expect(again.key).toEqual(raw);
      expect(again.salt).toBe(salt);
    }
  });

  test('encryptSync output has the wire format: 12-byte IV, ciphertext + 16-byte tag, base64', async () => {
    const { raw } = await rawAndWebCryptoKeys(ecdh);
    const message = 'héllo wörld';
    const out = ecdh.encryptSync({ message, secret: raw });
    expect(Object.keys(out).sort()).toEqual(['ct', 'iv']);
    expect(Buffer.from(out.iv, 'base64').length).toBe(12);
    expect(Buffer.from(out.ct, 'base64').length).toBe(Buffer.byteLength(message) + 16);
    expect(out.ct).toBe(Buffer.from(out.ct, 'base64').toString('base64')); // canonical, padded base64
  });

  test('native → WebCrypto and WebCrypto → native, with and without additional data', async () => {
    const { raw, web } = await rawAndWebCryptoKeys(ecdh);
    const text = JSON.stringify({ event: 'm', data: { n: 1, s: 'ünïcode ✓' } });
    for (const additionalData of [undefined, 'room:42', new Uint8Array([1, 2, 3])]) {
      const opts = additionalData === undefined ? undefined : { additionalData };
      const sealed = ecdh.encryptSync({ message: text, secret: raw, opts });
      expect(await browser.decrypt({ message: sealed, secret: web, opts })).toBe(text);
      const bytes = ecdh.encryptSync({ message: new TextEncoder().encode(text), secret: raw, opts });
      expect(await browser.decrypt({ message: bytes, secret: web, opts })).toBe(text);
      const fromWeb = await browser.encrypt({ message: text, secret: web, opts });
      expect(ecdh.decryptSync({ message: fromWeb, secret: raw, opts })).toBe(text);
    }
  });

  test('additional data, key and tag are all checked: any mismatch fails on both sides', async () => {
    const { raw, web } = await rawAndWebCryptoKeys(ecdh);
    const other = await rawAndWebCryptoKeys(ecdh);
    const sealed = ecdh.encryptSync({ message: 'x', secret: raw, opts: { additionalData: 'a' } });
    const failure = 'Decryption failed';
    await expect(browser.decrypt({ message: sealed, secret: web })).rejects.toThrow(failure);
    await expect(
      browser.decrypt({ message: sealed, secret: web, opts: { additionalData: 'b' } }),
    ).rejects.toThrow(failure);
    expect(() => ecdh.decryptSync({ message: sealed, secret: raw })).toThrow(failure);
    expect(() =>
      ecdh.decryptSync({ message: sealed, secret: other.raw, opts: { additionalData: 'a' } }),
    ).toThrow(failure);
    const ct = Buffer.from(sealed.ct, 'base64');
    ct[0]! ^= 1;
    const tampered = { iv: sealed.iv, ct: ct.toString('base64') };
    expect(() => ecdh.decryptSync({ message: tampered, secret: raw, opts: { additionalData: 'a' } })).toThrow(
      failure,
    );
    expect(() => ecdh.decryptSync({ message: { iv: sealed.iv, ct: 'AAAA' }, secret: raw })).toThrow(failure);
    expect(() => ecdh.decryptSync({ message: { iv: 'AAAA', ct: sealed.ct }, secret: raw })).toThrow(
      'IV must be 12 bytes',
    );
    expect(() => ecdh.decryptSync({ message: {} as IEncryptedPayload, secret: raw })).toThrow(
      '{ iv: string, ct: string }',
    );
  });

  test('a raw key must be 32 bytes', () => {
    for (const secret of [new Uint8Array(16), new Uint8Array(33), 'k'.repeat(32) as never]) {
      expect(() => ecdh.encryptSync({ message: 'x', secret })).toThrow('must be 32 bytes');
    }
  });

  test('every message gets a fresh IV, across refills of the IV pool', async () => {
    const { raw } = await rawAndWebCryptoKeys(ecdh);
    const ivs = new Set<string>();
    const count = 3000; // more than two pools of 1 024
    const kept: IEncryptedPayload[] = [];
    for (let i = 0; i < count; i++) {
      const sealed = ecdh.encryptSync({ message: 'same text', secret: raw });
      ivs.add(sealed.iv);
      if (i % 500 === 0) kept.push(sealed);
    }
    expect(ivs.size).toBe(count);
    // Earlier outputs stay valid after later calls (their IV bytes are not reused).
    for (const sealed of kept) expect(ecdh.decryptSync({ message: sealed, secret: raw })).toBe('same text');
  });

  test('createEcdhEncryption: the native transformer answers synchronously and encrypts the shared frame', async () => {
    const encryption = await createEcdhEncryption();
    const peer = await browser.generateKeyPair();
    const answer = await encryption.handshakeFn({ clientId: 'c1', data: { publicKey: peer.publicKeyB64 } });
    if (!answer) throw new Error('handshake refused');
    const { key } = await browser.deriveAESKey({
      privateKey: peer.keyPair.privateKey,
      peerPublicKey: await browser.importPublicKey({ rawKeyB64: answer.serverPublicKey }),
      salt: answer.salt,
    });
    const client = encryptedClient('c1');
    // The frame the server passes is what gets encrypted (it is never serialized again).
    const frame = '{"event":"m","data":{"from":"frame"}}';
    const out = encryption.outboundTransformer({ client, event: 'm', data: { ignored: true }, frame });
    expect(out instanceof Promise).toBe(false);
    const sealed = (out as { event: string; data: IEncryptedPayload }).data;
    expect((out as { event: string }).event).toBe('encrypted');
    expect(await browser.decrypt({ message: sealed, secret: key })).toBe(frame);
    // Without a frame (a direct caller) it serializes { event, data } itself.
    const direct = encryption.outboundTransformer({ client, event: 'm', data: { n: 2 } }) as {
      data: IEncryptedPayload;
    };
    expect(JSON.parse(await browser.decrypt({ message: direct.data, secret: key }))).toEqual({
      event: 'm',
      data: { n: 2 },
    });
  });

  test('createEcdhEncryption: nativeCipher must be a boolean; false keeps the WebCrypto (async) transformer', async () => {
    await expect(createEcdhEncryption({ nativeCipher: 'yes' as never })).rejects.toThrow(
      'nativeCipher must be a boolean',
    );
    const encryption = await createEcdhEncryption({ nativeCipher: false });
    const peer = await browser.generateKeyPair();
    await encryption.handshakeFn({ clientId: 'c1', data: { publicKey: peer.publicKeyB64 } });
    const out = encryption.outboundTransformer({ client: encryptedClient('c1'), event: 'm', data: 1 });
    expect(out instanceof Promise).toBe(true);
    expect((await out)?.event).toBe('encrypted');
  });
});

describe('interop with an independent WebCrypto (Node.js / OpenSSL in a child process)', () => {
  test('Node opens what the server sealed and the server opens what Node sealed, with and without AAD', async () => {
    const child = Bun.spawn(['node', join(import.meta.dir, 'fixtures/node-webcrypto-peer.mjs')], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    try {
      const reader = child.stdout.getReader();
      let buffered = '';
      const nextLine = async (): Promise<string> => {
        while (!buffered.includes('\n')) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`node peer exited: ${await new Response(child.stderr).text()}`);
          buffered += new TextDecoder().decode(value);
        }
        const at = buffered.indexOf('\n');
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        return line;
      };

      // The real server side: createEcdhEncryption's handshake and transformer.
      const ecdh = ECDH.withAlgorithm();
      const keyPair = await ecdh.generateKeyPair();
      const encryption = await createEcdhEncryption({ keyPair });
      const { publicKey } = JSON.parse(await nextLine()) as { publicKey: string };
      const answer = await encryption.handshakeFn({ clientId: 'node', data: { publicKey } });
      const salt = answer ? answer.salt : undefined;
      if (!answer || salt === undefined) throw new Error('handshake refused');
      // The same key again, as raw bytes, for the AAD cases the transformer does not use.
      const { key: raw } = await ecdh.deriveAESKeyBytes({
        privateKey: keyPair.keyPair.privateKey,
        peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: publicKey }),
        salt,
      });

      const frames = ['{"event":"a","data":1}', `{"event":"b","data":${JSON.stringify('ü'.repeat(40))}}`];
      const client = encryptedClient('node');
      const sealed: Array<IEncryptedPayload & { aad?: string }> = frames.map(
        (frame) =>
          (
            encryption.outboundTransformer({ client, event: 'x', data: null, frame }) as {
              data: IEncryptedPayload;
            }
          ).data,
      );
      sealed.push({
        ...ecdh.encryptSync({ message: 'bound', secret: raw, opts: { additionalData: 'ctx-1' } }),
        aad: 'ctx-1',
      });
      // The same ciphertext opened with another context, and without one: both must fail.
      sealed.push({ ...sealed[2]!, aad: 'ctx-2' });
      sealed.push({ iv: sealed[2]!.iv, ct: sealed[2]!.ct });

      child.stdin.write(
        `${JSON.stringify({
          serverPublicKey: answer.serverPublicKey,
          salt,
          info: DEFAULT_HKDF_INFO,
          sealed,
          toSeal: [{ text: 'from node' }, { text: 'from node, bound', aad: 'ctx-3' }],
        })}\n`,
      );
      child.stdin.end();
      const result = JSON.parse(await nextLine()) as {
        runtime: string;
        opened: Array<string | null>;
        sealed: Array<IEncryptedPayload & { aad?: string }>;
      };

      expect(result.runtime.startsWith('v')).toBe(true);
      expect(result.opened).toEqual([frames[0]!, frames[1]!, 'bound', null, null]);
      const [plain, bound] = result.sealed;
      expect(ecdh.decryptSync({ message: plain!, secret: raw })).toBe('from node');
      expect(ecdh.decryptSync({ message: bound!, secret: raw, opts: { additionalData: 'ctx-3' } })).toBe(
        'from node, bound',
      );
      expect(() => ecdh.decryptSync({ message: bound!, secret: raw })).toThrow('Decryption failed');
      expect(await child.exited).toBe(0);
    } finally {
      child.kill();
    }
  });
});
