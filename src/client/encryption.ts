import { ECDH, type IECDHKeyPair, type IEncryptedPayload } from '../crypto/ecdh.ts';
import { decodeFrame, type IFrame } from './frames.ts';

const EMPTY_SALT = new Uint8Array(0);

/**
 * One connection's side of the key exchange: a fresh P-256 key pair per
 * connection (so a leaked session key never opens another session), the AES
 * key derived from the server's answer, and decryption of `encrypted` frames.
 */
export class SessionCipher {
  #key?: CryptoKey;

  readonly #ecdh: ECDH;
  readonly #pair: IECDHKeyPair;

  private constructor(ecdh: ECDH, pair: IECDHKeyPair) {
    this.#ecdh = ecdh;
    this.#pair = pair;
  }

  static async create(hkdfInfo: string | undefined): Promise<SessionCipher> {
    const ecdh = ECDH.withAlgorithm(hkdfInfo ? { hkdfInfo } : {});
    return new SessionCipher(ecdh, await ecdh.generateKeyPair());
  }

  /** Base64 raw public key, sent as `publicKey` in the authenticate data. */
  get publicKey(): string {
    return this.#pair.publicKeyB64;
  }

  /** Derives the AES key the server derived from our public key and its salt. */
  async derive(serverPublicKey: string, salt: string | undefined): Promise<void> {
    const peerPublicKey = await this.#ecdh.importPublicKey({ rawKeyB64: serverPublicKey });
    const { key } = await this.#ecdh.deriveAESKey({
      privateKey: this.#pair.keyPair.privateKey,
      peerPublicKey,
      // Without a salt the server cannot have used a random one; an empty salt is the HKDF default.
      salt: salt ?? EMPTY_SALT,
    });
    this.#key = key;
  }

  get ready(): boolean {
    return this.#key !== undefined;
  }

  /** `{ iv, ct }` → the original `{ event, data }`; throws with the reason when that is impossible. */
  async open(payload: unknown): Promise<IFrame> {
    if (!this.#key) throw new Error('no session key (the key exchange did not complete)');
    const plain = await this.#ecdh.decrypt({ message: payload as IEncryptedPayload, secret: this.#key });
    const frame = decodeFrame(plain);
    if (typeof frame === 'string') throw new Error(`decrypted ${frame}`);
    return frame;
  }
}
