import type {
  IWebSocketClient,
  TWebSocketHandshakeFn,
  TWebSocketOutboundTransformer,
} from '../common/types.ts';
import type { IECDHKeyPair, IECDHOptions, IEncryptedPayload } from './ecdh.ts';
import { ECDH } from './ecdh-native.ts';

// Server side of the client SDK's encryption: the ECDH handshake during
// authentication and the outbound transformer that encrypts per client.

export interface IEcdhEncryptionOptions {
  /** HKDF info; the client must use the same value. Default: the ECDH default. */
  hkdfInfo?: IECDHOptions['hkdfInfo'];
  /** Reuse an existing server key pair instead of generating one. */
  keyPair?: IECDHKeyPair;
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
  /** Drops a client's key; call it from `clientDisconnectedFn`. True when a key was held. */
  forget(clientId: string): boolean;
  /**
   * Drops the keys of clients that are not in `liveClientIds` (e.g.
   * `helper.getClients().keys()`). Covers clients that went away during the
   * handshake, for which `clientDisconnectedFn` is not called. Returns how many were dropped.
   */
  prune(liveClientIds: Iterable<string>): number;
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
  const serverKeys = opts.keyPair ?? (await ecdh.generateKeyPair());
  // Raw key bytes with the native cipher, a non-extractable CryptoKey without it.
  const sessionKeys = new Map<string, Uint8Array | CryptoKey>();

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
    sessionKeys.set(clientId, key);
    return { serverPublicKey: serverKeys.publicKeyB64, salt };
  };

  type TTransformerOpts = { client: IWebSocketClient<object>; event: string; data: unknown; frame?: string };

  const keyOf = (client: IWebSocketClient<object>): Uint8Array | CryptoKey => {
    const secret = sessionKeys.get(client.id);
    // Throwing makes the server drop the message; returning null would send it in plain text.
    if (!secret) throw new Error(`[createEcdhEncryption] no session key for client ${client.id}`);
    return secret;
  };

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
    const secret = keyOf(opts.client) as Uint8Array;
    return { event: 'encrypted', data: ecdh.encryptSync({ message: plaintextOf(opts), secret }) };
  };

  const webCryptoTransformer = async (
    opts: TTransformerOpts,
  ): Promise<{ event: string; data: IEncryptedPayload } | null> => {
    if (!opts.client.encrypted) return null;
    const secret = keyOf(opts.client) as CryptoKey;
    const encrypted = await ecdh.encrypt({
      message: opts.frame ?? JSON.stringify({ event: opts.event, data: opts.data }),
      secret,
    });
    return { event: 'encrypted', data: encrypted };
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
