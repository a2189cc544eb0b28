import { describe, expect, test } from 'bun:test';
import { Command } from 'ioredis';
import { hashSlot } from '../../src/redis/hash-slot.ts';

/** The slot ioredis itself computes for a keyed command (its routing reference). */
const ioredisSlot = (key: string | Buffer) => new Command('get', [key]).getSlot();

describe('hashSlot', () => {
  test('matches the slots Redis documents', () => {
    // From the Redis Cluster specification and `CLUSTER KEYSLOT`.
    expect(hashSlot('123456789')).toBe(12739);
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('user1000'));
    // An empty first tag means "hash the whole key", even when a later tag is not
    // empty: Redis 7.0's CLUSTER KEYSLOT answers 7353 (ioredis 5.11 computes 15725).
    expect(hashSlot('a{}b{c}')).toBe(7353);
  });

  test('agrees with ioredis for channel names, hash tags, edge cases and non-ASCII text', () => {
    const keys = [
      'ws:broadcast',
      'ws:room:lobby',
      'ws:client:2f1c6a4e-8a4b-4f8e-9c1d-0e7b1f2a3c4d',
      'ws:user:ada',
      'ws:room:{tenant-7}:chat',
      '{}',
      '{a}{b}',
      'x{',
      'x}y{z',
      '',
      'ws:room:café',
      'ws:room:部屋',
      'ws:room:😀',
    ];
    for (const key of keys) {
      expect({ key, slot: hashSlot(key) }).toEqual({ key, slot: ioredisSlot(key) });
      expect(hashSlot(Buffer.from(key))).toBe(ioredisSlot(key));
    }
    for (let n = 0; n < 2_000; n++) {
      const key = `ws:room:r${n}`;
      if (hashSlot(key) !== ioredisSlot(key)) throw new Error(`slot differs for ${key}`);
    }
  });
});
