// The pieces under the bus's door: the depth pre-scan, the UTF-8 size bound and the signature format.
import { describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { BusSigner, resolveBusSecrets, SIGNED_BODY_START } from '../../src/bus/signing.ts';
import { jsonDepthExceeds, utf8LengthExceeds } from '../../src/utils/json.ts';

describe('jsonDepthExceeds', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  test('counts arrays and objects, not brackets inside strings (escaped quotes included)', () => {
    expect(jsonDepthExceeds(nested(5), 5)).toBe(false);
    expect(jsonDepthExceeds(nested(6), 5)).toBe(true);
    expect(jsonDepthExceeds(`{"a":${nested(4)}}`, 5)).toBe(false);
    expect(jsonDepthExceeds(`{"a":${nested(5)}}`, 5)).toBe(true);
    const inString = JSON.stringify({ s: `\\"${'['.repeat(50)}`, t: '{{{{{{{{{{{{' });
    expect(jsonDepthExceeds(inString, 2)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ s: 'a\\', deep: [[[[1]]]] }), 3)).toBe(true);
  });
  test('100 000 levels are found without recursion', () => {
    expect(jsonDepthExceeds(nested(100_000), 128)).toBe(true);
  });
});

describe('utf8LengthExceeds', () => {
  test('measures UTF-8 bytes, not UTF-16 units', () => {
    expect(utf8LengthExceeds('é'.repeat(600), 1024)).toBe(true); // 1 200 bytes in 600 units
    expect(utf8LengthExceeds('é'.repeat(512), 1024)).toBe(false);
    expect(utf8LengthExceeds('a'.repeat(1025), 1024)).toBe(true);
  });
});

describe('signed bus messages', () => {
  const secret = 'a-secret-of-enough-length';
  const json = '{"serverId":"s","type":"room","target":"r","event":"e","data":{"é":1}}';
  const byHand = `s1:${createHmac('sha256', secret).update(json).digest('base64')}:${json}`;

  test('the documented format: s1:<base64 HMAC-SHA-256 of the UTF-8 JSON>:<JSON>', () => {
    const signer = new BusSigner([secret]);
    expect(signer.sign(json)).toBe(byHand);
    expect(byHand.slice(SIGNED_BODY_START)).toBe(json);
    expect(signer.verify(byHand)).toBe(true);
  });

  test('any listed secret verifies; a changed byte, another secret or no signature does not', () => {
    expect(new BusSigner(['another-secret-xxxxxxx', secret]).verify(byHand)).toBe(true);
    expect(new BusSigner(['another-secret-xxxxxxx']).verify(byHand)).toBe(false);
    expect(new BusSigner([secret]).verify(byHand.replace('"e"', '"f"'))).toBe(false);
    expect(new BusSigner([secret]).verify(json)).toBe(false);
  });

  test('a history publication verifies without the position the publish script appended', () => {
    const signer = new BusSigner([secret]);
    const head = '{"serverId":"s","type":"room","target":"h","event":"e"';
    const published = `${signer.prefixFor(`${head},"data":1}`)}${head},"data":1,"offset":7,"epoch":"ep1"}`;
    expect(signer.verify(published)).toBe(true);
    // The head or the data changed: refused.
    expect(signer.verify(published.replace('"data":1', '"data":2'))).toBe(false);
  });

  test('busSecret: a string of at least 16 characters or a non-empty list of them', () => {
    expect(resolveBusSecrets('[p]', undefined)).toBeUndefined();
    expect(resolveBusSecrets('[p]', secret)).toEqual([secret]);
    for (const bad of ['short', [], [secret, 3], ''])
      expect(() => resolveBusSecrets('[p]', bad)).toThrow('busSecret must be');
  });
});
