import { describe, expect, test } from 'bun:test';
import { base64ToBytes } from '../../src/crypto/base64.ts';
import { DEFAULT_HKDF_INFO, ECDH } from '../../src/index.ts';

async function pairOfKeys(ecdh: ECDH, salt?: string) {
  const alice = await ecdh.generateKeyPair();
  const bob = await ecdh.generateKeyPair();
  const aliceSide = await ecdh.deriveAESKey({
    privateKey: alice.keyPair.privateKey,
    peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: bob.publicKeyB64 }),
    salt,
  });
  const bobSide = await ecdh.deriveAESKey({
    privateKey: bob.keyPair.privateKey,
    peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: alice.publicKeyB64 }),
    salt: aliceSide.salt,
  });
  return { alice, bob, aliceSide, bobSide };
}

describe('ECDH', () => {
  const ecdh = ECDH.withAlgorithm();

  test('defaults and options', () => {
    expect(ecdh.algorithm).toBe('ecdh-p256');
    expect(ecdh.hkdfInfo).toBe(DEFAULT_HKDF_INFO);
    expect(DEFAULT_HKDF_INFO).toBe('ignis-ecdh-p256-aes-256-gcm-v1');
    expect(ECDH.withAlgorithm({ hkdfInfo: 'app-v2' }).hkdfInfo).toBe('app-v2');
    expect(() => ECDH.withAlgorithm({ algorithm: 'x25519' as never })).toThrow('Unsupported algorithm');
  });

  test('public keys are raw 65-byte P-256 points in base64', async () => {
    const { publicKeyB64 } = await ecdh.generateKeyPair();
    const raw = base64ToBytes(publicKeyB64);
    expect(raw.length).toBe(65);
    expect(raw[0]).toBe(4);
  });

  test('both sides derive the same key; a random 32-byte salt is drawn when none is given', async () => {
    const { aliceSide, bobSide } = await pairOfKeys(ecdh);
    expect(base64ToBytes(aliceSide.salt).length).toBe(32);
    const sealed = await ecdh.encrypt({ message: 'hello ✓', secret: aliceSide.key });
    expect(base64ToBytes(sealed.iv).length).toBe(12);
    // 7 plaintext bytes + 3 for the check mark + 16 tag bytes
    expect(base64ToBytes(sealed.ct).length).toBe(new TextEncoder().encode('hello ✓').length + 16);
    expect(await ecdh.decrypt({ message: sealed, secret: bobSide.key })).toBe('hello ✓');
  });

  test('salts are fresh per derivation and accepted as bytes or base64', async () => {
    const a = await pairOfKeys(ecdh);
    const b = await pairOfKeys(ecdh);
    expect(a.aliceSide.salt).not.toBe(b.aliceSide.salt);
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const one = await ecdh.generateKeyPair();
    const two = await ecdh.generateKeyPair();
    const derived = await ecdh.deriveAESKey({
      privateKey: one.keyPair.privateKey,
      peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: two.publicKeyB64 }),
      salt,
    });
    expect(base64ToBytes(derived.salt)).toEqual(salt);
  });

  test('a different salt, key, hkdfInfo or additional data cannot decrypt', async () => {
    const { alice, bob, aliceSide } = await pairOfKeys(ecdh);
    const sealed = await ecdh.encrypt({
      message: 'secret',
      secret: aliceSide.key,
      opts: { additionalData: 'room:1' },
    });
    expect(
      await ecdh.decrypt({ message: sealed, secret: aliceSide.key, opts: { additionalData: 'room:1' } }),
    ).toBe('secret');
    await expect(
      ecdh.decrypt({ message: sealed, secret: aliceSide.key, opts: { additionalData: 'room:2' } }),
    ).rejects.toThrow('Decryption failed');

    const otherSalt = await ecdh.deriveAESKey({
      privateKey: bob.keyPair.privateKey,
      peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: alice.publicKeyB64 }),
    });
    await expect(ecdh.decrypt({ message: sealed, secret: otherSalt.key })).rejects.toThrow(
      'Decryption failed',
    );

    const otherInfo = await ECDH.withAlgorithm({ hkdfInfo: 'other' }).deriveAESKey({
      privateKey: bob.keyPair.privateKey,
      peerPublicKey: await ecdh.importPublicKey({ rawKeyB64: alice.publicKeyB64 }),
      salt: aliceSide.salt,
    });
    await expect(
      ecdh.decrypt({ message: sealed, secret: otherInfo.key, opts: { additionalData: 'room:1' } }),
    ).rejects.toThrow('Decryption failed');

    const tampered = { ...sealed, ct: sealed.ct.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) };
    await expect(
      ecdh.decrypt({ message: tampered, secret: aliceSide.key, opts: { additionalData: 'room:1' } }),
    ).rejects.toThrow('Decryption failed');
  });

  test('bad inputs get clear errors', async () => {
    await expect(ecdh.importPublicKey({ rawKeyB64: '' })).rejects.toThrow('non-empty');
    await expect(ecdh.importPublicKey({ rawKeyB64: 'AAAA' })).rejects.toThrow('65 bytes');
    await expect(ecdh.importPublicKey({ rawKeyB64: '%%%' })).rejects.toThrow('base64');
    const { aliceSide } = await pairOfKeys(ecdh);
    await expect(
      ecdh.decrypt({ message: { iv: 'AAAA', ct: 'AAAA' }, secret: aliceSide.key }),
    ).rejects.toThrow('12 bytes');
    await expect(ecdh.decrypt({ message: null as never, secret: aliceSide.key })).rejects.toThrow('{ iv');
  });
});
