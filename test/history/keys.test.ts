import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { clusterHashTag, historyKeys, waitForRedisReady } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';

const NAMES = [
  'lobby',
  'chat:general',
  'a{b',
  'a}b',
  '}starts',
  '{}',
  '{x}',
  'x{}y',
  '}{',
  'emoji 🎉 room',
  'r'.repeat(256),
];

describe('history keys', () => {
  test('the ws:history: prefix, one key per role, a non-empty hash tag shared by both keys', () => {
    expect(historyKeys('lobby')).toEqual({
      meta: 'ws:history:{lobby}:meta',
      stream: 'ws:history:{lobby}:stream',
    });
    for (const room of NAMES) {
      const { meta, stream } = historyKeys(room);
      expect(meta.startsWith('ws:history:')).toBe(true);
      const tag = clusterHashTag(meta);
      expect(tag).toBe(clusterHashTag(stream));
      expect(tag.length).toBeGreaterThan(0);
      expect(tag).not.toBe(meta); // a real tag, not the whole key
    }
  });

  test('names with braces are tagged by an encoding; distinct names never share a key', () => {
    expect(clusterHashTag(historyKeys('a}b').meta)).toBe(Buffer.from('a}b').toString('base64url'));
    const metas = new Set(NAMES.map((room) => historyKeys(room).meta));
    const streams = new Set(NAMES.map((room) => historyKeys(room).stream));
    expect(metas.size).toBe(NAMES.length);
    expect(streams.size).toBe(NAMES.length);
    // The encoded form cannot collide with a plain name that looks like it.
    const encoded = Buffer.from('a}b').toString('base64url');
    expect(historyKeys(encoded).meta).not.toBe(historyKeys('a}b').meta);
  });

  test('clusterHashTag follows the Cluster rule', () => {
    expect(clusterHashTag('plain')).toBe('plain');
    expect(clusterHashTag('a{b}c')).toBe('b');
    expect(clusterHashTag('a{}c{d}')).toBe('a{}c{d}');
    expect(clusterHashTag('a{b{c}d}')).toBe('b{c');
    expect(clusterHashTag('a{bc')).toBe('a{bc');
  });
});

describe('against a real Redis in cluster mode (CLUSTER KEYSLOT)', () => {
  let server: RedisServer;
  let redis: Redis;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'roomcast-cluster-'));
    server = await RedisServer.start(undefined, ['--dir', dir, '--cluster-enabled', 'yes']);
    redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
    await waitForRedisReady(redis, 10_000);
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('both keys of every room are in one slot', async () => {
    for (const room of NAMES) {
      const { meta, stream } = historyKeys(room);
      const [a, b] = await Promise.all([redis.cluster('KEYSLOT', meta), redis.cluster('KEYSLOT', stream)]);
      expect(a).toBe(b);
    }
  });
});
