import type {
  IWebSocketClient,
  TWebSocketAuthenticateFn,
  TWebSocketHandshakeFn,
  TWebSocketOutboundTransformer,
} from '../common/types.ts';
import { base64ToBytes, bytesToBase64 } from './base64.ts';
import type { IECDHKeyPair, IECDHOptions, IEncryptedPayload } from './ecdh.ts';
import { ECDH } from './ecdh-native.ts';
import { SEALED_AUTH_AAD, sealedAuthInfo } from './sealed-auth.ts';

// Server side of the client SDK's encryption: the ECDH handshake during
// authentication and the outbound transformer that encrypts per client.

export interface IEcdhEncryptionOptions {
  /** HKDF info; the client must use the same value. Default: the ECDH default. */
  hkdfInfo?: IECDHOptions['hkdfInfo'];
  /** Reuse an existing server key pair instead of generating one. */
  keyPair?: IECDHKeyPair;
  /**
   * The server's long-term P-256 key, base64 PKCS#8 (`generateEncryptionKey().privateKey`), shared by
   * every instance. Clients that pin its public key (`encryption: { serverPublicKey }`) know they
   * talk to the real server and seal their credentials to it (see docs/security.md). Instead of `keyPair`.
   */
  privateKey?: string;
  /** Field of the authenticate data that carries the client's public key. Default `publicKey`. */
  publicKeyField?: string;
  /**
   * Hold each client's key as raw bytes and encrypt synchronously with the
   * runtime's native AES-256-GCM (`node:crypto`), so the outbound transformer
   * answers without a promise. `false` keeps non-extractable WebCrypto keys and an
   * async transformer. Same wire format either way. Default `true`.
   */
  nativeCipher?: boolean;
}

export interface IEcdhEncryption {
  /** The server's raw P-256 public key, base64 (also sent to every client as `serverPublicKey`). */
  readonly publicKeyB64: string;
  /** Number of clients whose session key is held. */
  readonly size: number;
  /** Pass as `handshakeFn` (with `requireEncryption: true`). */
  handshakeFn: TWebSocketHandshakeFn<object>;
  /** Pass as `outboundTransformer`. */
  outboundTransformer: TWebSocketOutboundTransformer<unknown, object>;
  /**
   * Wraps your `authenticateFn` so it also takes credentials a pinning client sealed to the server's
   * key (`{ publicKey, sealed }`): they are opened first and your function sees them as if sent in
   * clear (with `publicKey`). A sealed payload that does not open is refused (4003) without calling it;
   * unsealed data is passed through unchanged.
   */
  authenticate<A extends object, M extends object>(
    authenticateFn: TWebSocketAuthenticateFn<A, M>,
  ): TWebSocketAuthenticateFn<A, M>;
  /** Drops a client's key; call it from `clientDisconnectedFn`. True when a key was held. */
  forget(clientId: string): boolean;
  /**
   * Drops the keys of clients that are not in `liveClientIds` (e.g.
   * `helper.getClients().keys()`). Covers clients that went away during the
   * handshake, for which `clientDisconnectedFn` is not called. Returns how many were dropped.
   */
  prune(liveClientIds: Iterable<string>): number;
}

/** One client's session: its AES key and the counter its next IV carries. */
interface ISession {
  key: Uint8Array | CryptoKey;
  /** Frames encrypted so far; the next IV carries `sent + 1`. */
  sent: number;
}

/** Bytes 0-3 of every IV; bytes 4-11 are the frame's counter, big-endian (see docs/security.md). */
const IV_PREFIX = 0x72630001;

/** Writes the next IV of a session into `iv` (12 bytes): the counter only grows, so no IV repeats under one key. */
function nextCounterIv(session: ISession, iv: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const counter = ++session.sent;
  const view = new DataView(iv.buffer, iv.byteOffset, 12);
  view.setUint32(0, IV_PREFIX);
  view.setUint32(4, Math.floor(counter / 0x1_0000_0000));
  view.setUint32(8, counter >>> 0);
  return iv;
}

/**
 * A fresh long-term key for `createEcdhEncryption({ privateKey })`: `privateKey` (base64 PKCS#8,
 * keep it secret, give it to every instance) and `publicKey` (base64 raw P-256, give it to the
 * clients to pin as `encryption: { serverPublicKey }`).
 */
export async function generateEncryptionKey(): Promise<{ privateKey: string; publicKey: string }> {
  const { keyPair, publicKeyB64 } = await ECDH.withAlgorithm().generateKeyPair();
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keyPair.privateKey));
  return { privateKey: bytesToBase64(pkcs8), publicKey: publicKeyB64 };
}

/** The key pair behind a base64 PKCS#8 P-256 private key (its public half recomputed from the JWK). */
async function importLongTermKey(privateKeyB64: string): Promise<IECDHKeyPair> {
  const curve = { name: 'ECDH', namedCurve: 'P-256' } as const;
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey('pkcs8', base64ToBytes(privateKeyB64), curve, true, [
      'deriveBits',
    ]);
  } catch {
    throw new Error(
      '[createEcdhEncryption] privateKey must be a base64 PKCS#8 P-256 key (generateEncryptionKey())',
    );
  }
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  delete jwk.d;
  jwk.key_ops = [];
  const publicKey = await crypto.subtle.importKey('jwk', jwk, curve, true, []);
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  // Only the public half may leave: re-import the private key as non-extractable.
  const sealedPrivate = await crypto.subtle.importKey('pkcs8', base64ToBytes(privateKeyB64), curve, false, [
    'deriveBits',
  ]);
  return { keyPair: { privateKey: sealedPrivate, publicKey }, publicKeyB64: bytesToBase64(raw) };
}

/**
 * Creates the key material and the two callbacks of the encryption handshake:
 * the client sends `publicKey` in its authenticate data, the server derives an
 * AES-256-GCM key with a fresh random salt per client and answers with
 * `{ serverPublicKey, salt }` (delivered in `connected`); from then on every
 * message to that client goes out as `{ event: 'encrypted', data: { iv, ct } }`.
 */
export async function createEcdhEncryption(opts: IEcdhEncryptionOptions = {}): Promise<IEcdhEncryption> {
  const ecdh = ECDH.withAlgorithm(opts.hkdfInfo === undefined ? {} : { hkdfInfo: opts.hkdfInfo });
  const field = opts.publicKeyField ?? 'publicKey';
  if (typeof field !== 'string' || field.length === 0) {
    throw new Error('[createEcdhEncryption] publicKeyField must be a non-empty string');
  }
  const nativeCipher = opts.nativeCipher ?? true;
  if (typeof nativeCipher !== 'boolean') {
    throw new Error('[createEcdhEncryption] nativeCipher must be a boolean');
  }
  if (opts.privateKey !== undefined && opts.keyPair !== undefined) {
    throw new Error('[createEcdhEncryption] give keyPair or privateKey, not both');
  }
  const serverKeys =
    opts.privateKey !== undefined
      ? await importLongTermKey(opts.privateKey)
      : (opts.keyPair ?? (await ecdh.generateKeyPair()));
  // Raw key bytes with the native cipher, a non-extractable CryptoKey without it.
  const sessionKeys = new Map<string, ISession>();
  const authEcdh = ECDH.withAlgorithm({ hkdfInfo: sealedAuthInfo(ecdh.hkdfInfo) });

  const handshakeFn: TWebSocketHandshakeFn<object> = async ({ clientId, data }) => {
    const clientKey = (data as Record<string, unknown>)[field];
    if (typeof clientKey !== 'string' || clientKey.length === 0) return null;
    let peerPublicKey: CryptoKey;
    try {
      peerPublicKey = await ecdh.importPublicKey({ rawKeyB64: clientKey });
    } catch {
      return null; // not a P-256 key: refuse (4004) rather than fail loudly on client input
    }
    // No salt given: a random one is drawn, which the client needs too.
    const keyOpts = { privateKey: serverKeys.keyPair.privateKey, peerPublicKey };
    const { key, salt } = nativeCipher
      ? await ecdh.deriveAESKeyBytes(keyOpts)
      : await ecdh.deriveAESKey(keyOpts);
    sessionKeys.set(clientId, { key, sent: 0 });
    return { serverPublicKey: serverKeys.publicKeyB64, salt, sequenced: true };
  };

  /** The credentials inside `{ publicKey, sealed: { salt, iv, ct } }`, or undefined when they do not open. */
  const openSealed = async (data: Record<string, unknown>): Promise<Record<string, unknown> | undefined> => {
    const { [field]: publicKey, sealed } = data;
    if (typeof publicKey !== 'string' || typeof sealed !== 'object' || sealed === null) return undefined;
    const { salt, iv, ct } = sealed as Record<string, unknown>;
    if (typeof salt !== 'string' || typeof iv !== 'string' || typeof ct !== 'string') return undefined;
    try {
      const peerPublicKey = await authEcdh.importPublicKey({ rawKeyB64: publicKey });
      const { key } = await authEcdh.deriveAESKey({
        privateKey: serverKeys.keyPair.privateKey,
        peerPublicKey,
        salt,
      });
      const text = await authEcdh.decrypt({
        message: { iv, ct },
        secret: key,
        opts: { additionalData: SEALED_AUTH_AAD },
      });
      const credentials: unknown = JSON.parse(text);
      if (typeof credentials !== 'object' || credentials === null || Array.isArray(credentials))
        return undefined;
      return { ...(credentials as Record<string, unknown>), [field]: publicKey };
    } catch {
      return undefined;
    }
  };

  const authenticate = <A extends object, M extends object>(
    authenticateFn: TWebSocketAuthenticateFn<A, M>,
  ): TWebSocketAuthenticateFn<A, M> => {
    return async (data, upgrade) => {
      const record = data as Record<string, unknown>;
      if (record.sealed === undefined) return authenticateFn(data, upgrade);
      const opened = await openSealed(record);
      return opened ? authenticateFn(opened as A, upgrade) : null;
    };
  };

  type TTransformerOpts = { client: IWebSocketClient<object>; event: string; data: unknown; frame?: string };

  const sessionOf = (client: IWebSocketClient<object>): ISession => {
    const session = sessionKeys.get(client.id);
    // Throwing makes the server drop the message; returning null would send it in plain text.
    if (!session) throw new Error(`[createEcdhEncryption] no session key for client ${client.id}`);
    return session;
  };
  // The native cipher copies the IV when it starts: one scratch buffer serves every call.
  const scratchIv = new Uint8Array(12);

  // The server hands every client of one message the same frame string; its
  // UTF-8 bytes are kept for the next client instead of being encoded again.
  let lastText: string | undefined;
  let lastBytes = new Uint8Array(0);
  const plaintextOf = ({ event, data, frame }: TTransformerOpts): Uint8Array => {
    const text = frame ?? JSON.stringify({ event, data });
    if (text !== lastText) {
      lastBytes = Buffer.from(text, 'utf8');
      lastText = text;
    }
    return lastBytes;
  };

  const nativeTransformer = (opts: TTransformerOpts): { event: string; data: IEncryptedPayload } | null => {
    if (!opts.client.encrypted) return null;
    const session = sessionOf(opts.client);
    const iv = nextCounterIv(session, scratchIv);
    const secret = session.key as Uint8Array;
    return { event: 'encrypted', data: ecdh.encryptSync({ message: plaintextOf(opts), secret, iv }) };
  };

  const webCryptoTransformer = async (
    opts: TTransformerOpts,
  ): Promise<{ event: string; data: IEncryptedPayload } | null> => {
    if (!opts.client.encrypted) return null;
    const session = sessionOf(opts.client);
    // The IV is taken now, in call order (the server calls a client's transformer in send order).
    const iv = nextCounterIv(session, new Uint8Array(12));
    const text = opts.frame ?? JSON.stringify({ event: opts.event, data: opts.data });
    const ct = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, tagLength: 128 },
      session.key as CryptoKey,
      new TextEncoder().encode(text),
    );
    return { event: 'encrypted', data: { iv: bytesToBase64(iv), ct: bytesToBase64(new Uint8Array(ct)) } };
  };

  const outboundTransformer: TWebSocketOutboundTransformer<unknown, object> = nativeCipher
    ? nativeTransformer
    : webCryptoTransformer;

  return {
    publicKeyB64: serverKeys.publicKeyB64,
    get size() {
      return sessionKeys.size;
    },
    handshakeFn,
    outboundTransformer,
    authenticate,
    forget: (clientId) => sessionKeys.delete(clientId),
    prune(liveClientIds) {
      const live = new Set(liveClientIds);
      let dropped = 0;
      for (const clientId of sessionKeys.keys()) {
        if (!live.has(clientId)) {
          sessionKeys.delete(clientId);
          dropped++;
        }
      }
      return dropped;
    },
  };
}
