import { base64ToBytes, bytesToBase64 } from './base64.ts';

// ECDH P-256 key agreement + HKDF-SHA-256 + AES-256-GCM, on WebCrypto only so the
// same code runs in Bun, Node and browsers.

export type TECDHAlgorithm = 'ecdh-p256';

export interface IECDHOptions {
  algorithm?: TECDHAlgorithm;
  /** HKDF `info`; both sides must use the same value. */
  hkdfInfo?: string;
}

export interface IECDHKeyPair {
  /** WebCrypto's CryptoKeyPair, spelled out so a Node program needs no DOM lib for it. */
  keyPair: { publicKey: CryptoKey; privateKey: CryptoKey };
  /** Raw uncompressed public key (65 bytes), base64. */
  publicKeyB64: string;
}

export interface IEncryptedPayload {
  /** 12-byte IV, base64. */
  iv: string;
  /** Ciphertext followed by its 128-bit tag, base64. */
  ct: string;
}

export interface ICipherOptions {
  /** Context bound to the ciphertext (AES-GCM additional data); decryption needs the same value. */
  additionalData?: string | Uint8Array;
}

/** A session key: the `CryptoKey`, or `deriveAESKey`'s whole result (`{ key, salt }`) as the guides pass it. */
export type TSecret = CryptoKey | { key: CryptoKey; salt?: string };

function keyOf(secret: TSecret): CryptoKey {
  // A CryptoKey has no `key` property; `deriveAESKey`'s result does.
  const key = (secret as { key?: unknown } | null)?.key;
  return (key ?? secret) as CryptoKey;
}

export const DEFAULT_HKDF_INFO = 'ignis-ecdh-p256-aes-256-gcm-v1';

const CURVE = { name: 'ECDH', namedCurve: 'P-256' } as const;
const IV_BYTES = 12;
const SALT_BYTES = 32;
const RAW_P256_PUBLIC_KEY_BYTES = 65;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function subtle(): SubtleCrypto {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new Error('[ECDH] crypto.subtle is not available');
  return api;
}

function toBytes(value: string | Uint8Array): Uint8Array<ArrayBuffer> {
  return typeof value === 'string' ? encoder.encode(value) : new Uint8Array(value);
}

export class ECDH {
  readonly algorithm: TECDHAlgorithm;
  readonly hkdfInfo: string;

  // Protected so the server's ECDH (ecdh-native.ts: raw keys, native cipher) can extend it.
  protected constructor(opts: Required<IECDHOptions>) {
    this.algorithm = opts.algorithm;
    this.hkdfInfo = opts.hkdfInfo;
  }

  static withAlgorithm(opts: IECDHOptions = {}): ECDH {
    const algorithm = opts.algorithm ?? 'ecdh-p256';
    if (algorithm !== 'ecdh-p256') {
      throw new Error(`[ECDH] Unsupported algorithm "${String(algorithm)}" (only ecdh-p256)`);
    }
    const hkdfInfo = opts.hkdfInfo ?? DEFAULT_HKDF_INFO;
    if (typeof hkdfInfo !== 'string' || hkdfInfo.length === 0) {
      throw new Error('[ECDH] hkdfInfo must be a non-empty string');
    }
    return new ECDH({ algorithm, hkdfInfo });
  }

  async generateKeyPair(): Promise<IECDHKeyPair> {
    const keyPair = (await subtle().generateKey(CURVE, true, ['deriveBits'])) as IECDHKeyPair['keyPair'];
    const raw = new Uint8Array(await subtle().exportKey('raw', keyPair.publicKey));
    return { keyPair, publicKeyB64: bytesToBase64(raw) };
  }

  async importPublicKey(opts: { rawKeyB64: string }): Promise<CryptoKey> {
    if (typeof opts?.rawKeyB64 !== 'string' || opts.rawKeyB64.length === 0) {
      throw new Error('[ECDH] rawKeyB64 must be a non-empty base64 string');
    }
    const raw = base64ToBytes(opts.rawKeyB64);
    if (raw.length !== RAW_P256_PUBLIC_KEY_BYTES || raw[0] !== 0x04) {
      throw new Error('[ECDH] Not a raw P-256 public key (65 bytes)');
    }
    return subtle().importKey('raw', raw, CURVE, true, []);
  }

  /**
   * Derives an AES-256-GCM key from our private key and the peer's public key.
   * Without `salt`, a random 32-byte salt is drawn; it is returned (base64) and
   * must reach the peer so both sides derive the same key.
   */
  async deriveAESKey(opts: {
    privateKey: CryptoKey;
    peerPublicKey: CryptoKey;
    salt?: string | Uint8Array;
  }): Promise<{ key: CryptoKey; salt: string }> {
    const saltBytes =
      opts.salt === undefined
        ? globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES))
        : typeof opts.salt === 'string'
          ? base64ToBytes(opts.salt)
          : new Uint8Array(opts.salt);

    const shared = await subtle().deriveBits(
      { name: 'ECDH', public: opts.peerPublicKey },
      opts.privateKey,
      256,
    );
    const hkdfKey = await subtle().importKey('raw', shared, 'HKDF', false, ['deriveKey']);
    const key = await subtle().deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: saltBytes, info: encoder.encode(this.hkdfInfo) },
      hkdfKey,
      { name: 'AES-GCM', length: 256 },
      false,
      ['encrypt', 'decrypt'],
    );
    return { key, salt: bytesToBase64(saltBytes) };
  }

  async encrypt(opts: {
    message: string;
    secret: TSecret;
    opts?: ICipherOptions;
  }): Promise<IEncryptedPayload> {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const params: AesGcmParams = { name: 'AES-GCM', iv, tagLength: 128 };
    if (opts.opts?.additionalData !== undefined) params.additionalData = toBytes(opts.opts.additionalData);
    const ct = await subtle().encrypt(params, keyOf(opts.secret), encoder.encode(opts.message));
    return { iv: bytesToBase64(iv), ct: bytesToBase64(new Uint8Array(ct)) };
  }

  /** Decrypts `{ iv, ct }`; throws when the key, IV, tag or additional data do not match. */
  async decrypt(opts: {
    message: IEncryptedPayload;
    secret: TSecret;
    opts?: ICipherOptions;
  }): Promise<string> {
    const { message } = opts;
    if (!message || typeof message.iv !== 'string' || typeof message.ct !== 'string') {
      throw new Error('[ECDH] Encrypted payload must be { iv: string, ct: string }');
    }
    const iv = base64ToBytes(message.iv);
    if (iv.length !== IV_BYTES) throw new Error('[ECDH] IV must be 12 bytes');
    const params: AesGcmParams = { name: 'AES-GCM', iv, tagLength: 128 };
    if (opts.opts?.additionalData !== undefined) params.additionalData = toBytes(opts.opts.additionalData);
    let plain: ArrayBuffer;
    try {
      plain = await subtle().decrypt(params, keyOf(opts.secret), base64ToBytes(message.ct));
    } catch {
      throw new Error('[ECDH] Decryption failed (wrong key or altered data)');
    }
    return decoder.decode(plain);
  }
}
