import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { base64ToBytes } from './base64.ts';
import {
  type ICipherOptions,
  type IECDHOptions,
  type IEncryptedPayload,
  ECDH as WebCryptoECDH,
} from './ecdh.ts';

// The server's ECDH: everything of the WebCrypto helper (which the browser SDK
// bundles, so it stays free of node:crypto), plus keys held as raw bytes and a
// synchronous AES-256-GCM on the runtime's native cipher. The output is the same
// `{ iv, ct }` format, so WebCrypto on the other side decrypts it unchanged.

const CIPHER = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SALT_BYTES = 32;
/** IVs are cut from one random block, refilled when used up: one RNG call per 1 024 messages. */
const IV_POOL_BYTES = IV_BYTES * 1024;

let ivPool = Buffer.allocUnsafe(IV_POOL_BYTES);
let ivOffset = IV_POOL_BYTES;

/** A fresh random 12-byte IV. The slice stays valid: a used-up pool is replaced, never refilled. */
function nextIv(): Buffer {
  if (ivOffset === IV_POOL_BYTES) {
    ivPool = randomFillSync(Buffer.allocUnsafe(IV_POOL_BYTES));
    ivOffset = 0;
  }
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
  return iv;
}

function callerIv(iv: Uint8Array): Buffer {
  if (!(iv instanceof Uint8Array) || iv.length !== IV_BYTES)
    throw new Error('[ECDH] iv must be 12 bytes (a Uint8Array)');
  return Buffer.from(iv.buffer, iv.byteOffset, IV_BYTES);
}

function checkKey(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length !== KEY_BYTES) {
    throw new Error('[ECDH] A raw AES-256-GCM key must be 32 bytes (a Uint8Array)');
  }
}

function additionalDataBytes(value: string | Uint8Array): Buffer {
  return typeof value === 'string'
    ? Buffer.from(value, 'utf8')
    : Buffer.from(value.buffer, value.byteOffset, value.length);
}

export class ECDH extends WebCryptoECDH {
  static override withAlgorithm(opts: IECDHOptions = {}): ECDH {
    const checked = WebCryptoECDH.withAlgorithm(opts); // validates and applies the defaults
    return new ECDH({ algorithm: checked.algorithm, hkdfInfo: checked.hkdfInfo });
  }

  /**
   * Like `deriveAESKey` (same ECDH, HKDF-SHA-256, salt and info, so the peer's
   * WebCrypto key is the same key), but returns the 32 key bytes for
   * `encryptSync` / `decryptSync` instead of a non-extractable `CryptoKey`.
   */
  async deriveAESKeyBytes(opts: {
    privateKey: CryptoKey;
    peerPublicKey: CryptoKey;
    salt?: string | Uint8Array;
  }): Promise<{ key: Uint8Array; salt: string }> {
    // The same steps as deriveAESKey, written out here rather than shared: the browser
    // SDK bundles the WebCrypto class, and its size budget has no room for a shared helper.
    const subtle = globalThis.crypto.subtle;
    const salt =
      opts.salt === undefined
        ? randomFillSync(new Uint8Array(SALT_BYTES))
        : typeof opts.salt === 'string'
          ? base64ToBytes(opts.salt)
          : new Uint8Array(opts.salt);
    const shared = await subtle.deriveBits(
      { name: 'ECDH', public: opts.peerPublicKey },
      opts.privateKey,
      256,
    );
    const hkdf = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveBits']);
    const info = new TextEncoder().encode(this.hkdfInfo);
    const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, hkdf, KEY_BYTES * 8);
    return { key: new Uint8Array(bits), salt: Buffer.from(salt).toString('base64') };
  }

  /**
   * `encrypt` with a raw key, synchronously on the native cipher: a fresh random
   * 12-byte IV, the 16-byte tag appended to the ciphertext, both base64.
   * `message` may be the UTF-8 bytes of the text, so a caller sending the same
   * message to many clients encodes it once.
   */
  encryptSync(opts: {
    message: string | Uint8Array;
    secret: Uint8Array;
    opts?: ICipherOptions;
    /** A 12-byte IV of the caller's (e.g. a counter); it must never repeat under one key. Default: random. */
    iv?: Uint8Array;
  }): IEncryptedPayload {
    checkKey(opts.secret);
    const iv = opts.iv === undefined ? nextIv() : callerIv(opts.iv);
    const cipher = createCipheriv(CIPHER, opts.secret, iv, { authTagLength: TAG_BYTES });
    const aad = opts.opts?.additionalData;
    if (aad !== undefined) cipher.setAAD(additionalDataBytes(aad));
    const body =
      typeof opts.message === 'string' ? cipher.update(opts.message, 'utf8') : cipher.update(opts.message);
    const tail = cipher.final();
    const ct = Buffer.concat([body, tail, cipher.getAuthTag()]);
    return { iv: iv.toString('base64'), ct: ct.toString('base64') };
  }

  /** `decrypt` with a raw key, synchronously; throws `Decryption failed` on any mismatch, as `decrypt` does. */
  decryptSync(opts: { message: IEncryptedPayload; secret: Uint8Array; opts?: ICipherOptions }): string {
    checkKey(opts.secret);
    const { message } = opts;
    if (!message || typeof message.iv !== 'string' || typeof message.ct !== 'string') {
      throw new Error('[ECDH] Encrypted payload must be { iv: string, ct: string }');
    }
    const iv = Buffer.from(message.iv, 'base64');
    if (iv.length !== IV_BYTES) throw new Error('[ECDH] IV must be 12 bytes');
    const sealed = Buffer.from(message.ct, 'base64');
    try {
      if (sealed.length < TAG_BYTES) throw new Error('too short');
      const decipher = createDecipheriv(CIPHER, opts.secret, iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const aad = opts.opts?.additionalData;
      if (aad !== undefined) decipher.setAAD(additionalDataBytes(aad));
      const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      return Buffer.concat([body, decipher.final()]).toString('utf8');
    } catch {
      throw new Error('[ECDH] Decryption failed (wrong key or altered data)');
    }
  }
}
