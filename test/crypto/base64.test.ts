import { describe, expect, test } from 'bun:test';
import { base64ToBytes, bytesToBase64 } from '../../src/crypto/base64.ts';

// bytesToBase64 uses the runtime's standard encoder (Uint8Array.prototype.toBase64) when there is
// one and builds a string for btoa otherwise (older browsers, Node 20): both must give Buffer's text,
// for views that do not start at the beginning of their buffer too.
describe('base64', () => {
  const lengths = [0, 1, 2, 3, 12, 16, 31, 77, 0x8000 + 5];

  test.each(lengths)(
    '%p bytes, a view at an offset: both encoders agree with Buffer and decode back',
    (n) => {
      const backing = crypto.getRandomValues(new Uint8Array(n + 7));
      const view = backing.subarray(3, 3 + n);
      const expected = Buffer.from(view).toString('base64');
      expect(bytesToBase64(view)).toBe(expected);
      // The fallback: an own property hides the prototype's encoder.
      const bare = backing.subarray(3, 3 + n);
      Object.defineProperty(bare, 'toBase64', { value: undefined });
      expect(bytesToBase64(bare)).toBe(expected);
      expect([...base64ToBytes(expected)]).toEqual([...view]);
    },
  );
});
