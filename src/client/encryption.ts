import { base64ToBytes } from '../crypto/base64.ts';
import { DEFAULT_HKDF_INFO, ECDH, type IECDHKeyPair, type IEncryptedPayload } from '../crypto/ecdh.ts';
import { sealCredentials } from '../crypto/sealed-auth.ts';
import { decodeFrame, type IFrame } from './frames.ts';
import type { IEncryptionOptions } from './types.ts';

const EMPTY_SALT = new Uint8Array(0);

/** Why a frame was refused; the client reports it with this code. */
export class CipherRefusal extends Error {
  constructor(
    readonly code: 'DECRYPT_FAILED' | 'REPLAYED_FRAME' | 'HANDSHAKE_FAILED',
    message: string,
  ) {
    super(message);
  }
}

/**
 * One connection's side of the key exchange: a fresh P-256 key pair per
 * connection (so a leaked session key never opens another session), the AES
 * key derived from the server's answer, and decryption of `encrypted` frames.
 * With a pinned server key the credentials are sealed to it and the server must
 * number its frames; numbered frames must arrive with growing counters.
 */
export class SessionCipher {
  #key?: CryptoKey;
  /** The server numbers its frames in the IV (`sequenced` in `connected`). */
  #sequenced = false;
  /** Counter of the last frame opened. */
  #last = 0;

  readonly #ecdh: ECDH;
  readonly #pair: IECDHKeyPair;
  readonly #options: IEncryptionOptions;

  private constructor(ecdh: ECDH, pair: IECDHKeyPair, options: IEncryptionOptions) {
    this.#ecdh = ecdh;
    this.#pair = pair;
    this.#options = options;
  }

  static async create(options: IEncryptionOptions): Promise<SessionCipher> {
    const ecdh = ECDH.withAlgorithm(options.hkdfInfo ? { hkdfInfo: options.hkdfInfo } : {});
    return new SessionCipher(ecdh, await ecdh.generateKeyPair(), options);
  }

  /**
   * The authenticate data: the credentials plus `publicKey`; with a pinned server key, the
   * credentials sealed to it (`sealed`) instead of in clear.
   */
  async authenticateData(credentials: Record<string, unknown>): Promise<Record<string, unknown>> {
    const publicKey = this.#pair.publicKeyB64;
    const pinned = this.#options.serverPublicKey;
    if (!pinned) return { ...credentials, publicKey };
    const info = this.#options.hkdfInfo ?? DEFAULT_HKDF_INFO;
    const sealed = await sealCredentials(info, this.#pair.keyPair.privateKey, pinned, credentials);
    return { publicKey, sealed };
  }

  /** Derives the AES key the server derived from our public key and its salt. */
  async derive(
    serverPublicKey: string | undefined,
    salt: string | undefined,
    sequenced: boolean,
  ): Promise<void> {
    const pinned = this.#options.serverPublicKey;
    if (pinned && (serverPublicKey !== pinned || !sequenced)) {
      throw new CipherRefusal('HANDSHAKE_FAILED', 'pinned key not proven');
    }
    if (!serverPublicKey) throw new Error('the server sent no public key; its messages stay plain');
    const peerPublicKey = await this.#ecdh.importPublicKey({ rawKeyB64: serverPublicKey });
    const { key } = await this.#ecdh.deriveAESKey({
      privateKey: this.#pair.keyPair.privateKey,
      peerPublicKey,
      // Without a salt the server cannot have used a random one; an empty salt is the HKDF default.
      salt: salt ?? EMPTY_SALT,
    });
    this.#key = key;
    this.#sequenced = sequenced;
  }

  get ready(): boolean {
    return this.#key !== undefined;
  }

  /** `{ iv, ct }` → the original frame; throws a `CipherRefusal` when that is impossible. */
  async open(payload: unknown): Promise<IFrame> {
    if (!this.#key) throw new CipherRefusal('DECRYPT_FAILED', 'no session key');
    let counter = 0;
    if (this.#sequenced) {
      // IV bytes 4-11: the frame's number, big-endian; it must be past the last one opened.
      const iv = (payload as IEncryptedPayload | undefined)?.iv;
      const view = new DataView(base64ToBytes(typeof iv === 'string' ? iv : '').buffer);
      if (view.byteLength !== 12) throw new CipherRefusal('DECRYPT_FAILED', 'bad IV');
      counter = view.getUint32(4) * 0x1_0000_0000 + view.getUint32(8);
      if (counter <= this.#last) {
        throw new CipherRefusal('REPLAYED_FRAME', `frame ${counter} <= ${this.#last}`);
      }
    }
    let plain: string;
    try {
      plain = await this.#ecdh.decrypt({ message: payload as IEncryptedPayload, secret: this.#key });
    } catch (error) {
      throw new CipherRefusal('DECRYPT_FAILED', (error as Error).message);
    }
    // Only a frame that opened moves the counter: a forged one cannot skip the real ones.
    if (counter > 0) this.#last = counter;
    const frame = decodeFrame(plain);
    if (typeof frame === 'string') throw new CipherRefusal('DECRYPT_FAILED', `decrypted ${frame}`);
    return frame;
  }
}
