import type {
  IWebSocketClient,
  TWebSocketHandshakeFn,
  TWebSocketOutboundTransformer,
} from '../common/types.ts';
import { ECDH, type IECDHKeyPair, type IECDHOptions, type IEncryptedPayload } from './ecdh.ts';

// Server side of the client SDK's encryption: the ECDH handshake during
// authentication and the outbound transformer that encrypts per client.

export interface IEcdhEncryptionOptions {
  /** HKDF info; the client must use the same value. Default: the ECDH default. */
  hkdfInfo?: IECDHOptions['hkdfInfo'];
  /** Reuse an existing server key pair instead of generating one. */
  keyPair?: IECDHKeyPair;
  /** Field of the authenticate data that carries the client's public key. Default `publicKey`. */
  publicKeyField?: string;
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
  const serverKeys = opts.keyPair ?? (await ecdh.generateKeyPair());
  const sessionKeys = new Map<string, CryptoKey>();

  const handshakeFn: TWebSocketHandshakeFn<object> = async ({ clientId, data }) => {
    const clientKey = (data as Record<string, unknown>)[field];
    if (typeof clientKey !== 'string' || clientKey.length === 0) return null;
    let peerPublicKey: CryptoKey;
    try {
      peerPublicKey = await ecdh.importPublicKey({ rawKeyB64: clientKey });
    } catch {
      return null; // not a P-256 key: refuse (4004) rather than fail loudly on client input
    }
    // No salt given: deriveAESKey draws a random one, which the client needs too.
    const { key, salt } = await ecdh.deriveAESKey({
      privateKey: serverKeys.keyPair.privateKey,
      peerPublicKey,
    });
    sessionKeys.set(clientId, key);
    return { serverPublicKey: serverKeys.publicKeyB64, salt };
  };

  const outboundTransformer: TWebSocketOutboundTransformer<unknown, object> = async ({
    client,
    event,
    data,
  }: {
    client: IWebSocketClient<object>;
    event: string;
    data: unknown;
  }) => {
    if (!client.encrypted) return null;
    const secret = sessionKeys.get(client.id);
    // Throwing makes the server drop the message; returning null would send it in plain text.
    if (!secret) throw new Error(`[createEcdhEncryption] no session key for client ${client.id}`);
    const encrypted: IEncryptedPayload = await ecdh.encrypt({
      message: JSON.stringify({ event, data }),
      secret,
    });
    return { event: 'encrypted', data: encrypted };
  };

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
