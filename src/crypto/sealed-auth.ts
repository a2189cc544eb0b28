import { ECDH } from './ecdh.ts';

// Credentials sealed to the server's long-term key (a client that pins that key): the client
// derives a one-off AES key from its connection key pair and the pinned public key, and sends
// `{ publicKey, sealed: { salt, iv, ct } }` as its authenticate data. Only the holder of the
// server's private key can open it (createEcdhEncryption's `authenticate` wrapper).

/** Additional data bound to every sealed credential (a ciphertext made for anything else will not open). */
export const SEALED_AUTH_AAD = 'roomcast-sealed-auth-v1';

/** HKDF info of the sealing key: the session's info with a suffix, so the two keys never coincide. */
export function sealedAuthInfo(hkdfInfo: string): string {
  return `${hkdfInfo}/sealed-auth`;
}

/** The sealed form of `credentials` for a server whose pinned public key is `serverPublicKey`. */
export async function sealCredentials(
  hkdfInfo: string,
  privateKey: CryptoKey,
  serverPublicKey: string,
  credentials: Record<string, unknown>,
): Promise<{ salt: string; iv: string; ct: string }> {
  const ecdh = ECDH.withAlgorithm({ hkdfInfo: sealedAuthInfo(hkdfInfo) });
  const peerPublicKey = await ecdh.importPublicKey({ rawKeyB64: serverPublicKey });
  const { key, salt } = await ecdh.deriveAESKey({ privateKey, peerPublicKey });
  const sealed = await ecdh.encrypt({
    message: JSON.stringify(credentials),
    secret: key,
    opts: { additionalData: SEALED_AUTH_AAD },
  });
  return { salt, ...sealed };
}
