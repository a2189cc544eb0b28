import { afterEach, describe, expect, test } from 'bun:test';
import { LogRateLimiter } from '../../src/common/log.ts';
import { RedisHelper } from '../../src/index.ts';
import { freePort } from '../support/redis-server.ts';
import { recordingLogger, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('LogRateLimiter', () => {
  test('one line per key per interval, and the next one says how many were held back', () => {
    let now = 1_000;
    const limiter = new LogRateLimiter(10_000, () => now);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeUndefined();
    expect(limiter.take('b')).toBe(0); // keys are independent
    now += 9_999;
    expect(limiter.take('a')).toBeUndefined();
    now += 1;
    expect(limiter.take('a')).toBe(2);
    expect(limiter.take('a')).toBeUndefined();
  });
});

describe('closes an operator must see', () => {
  test('refused authentications are logged at info, one line per 10 s with the rest counted', async () => {
    const logger = recordingLogger();
    const server = await startServer({ logger });
    cleanups.push(() => server.stop());
    for (let i = 0; i < 4; i++) {
      const client = await TestClient.connect(server.url);
      cleanups.push(() => client.close());
      client.send({ event: 'authenticate', data: { token: 'wrong' } });
      expect((await client.closedWithin()).code).toBe(4003);
    }
    const lines = logger.lines.filter((line) => line.message.includes('with 4003'));
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe('info');
    expect(server.helper.getStats()).toMatchObject({ clients: 0 });
  });

  test('an abuse close (4005, too many frames before authenticating) is a warning', async () => {
    const logger = recordingLogger();
    const server = await startServer({ logger, limits: { maxUnauthenticatedFrames: 2 } });
    cleanups.push(() => server.stop());
    const client = await TestClient.connect(server.url);
    cleanups.push(() => client.close());
    for (let i = 0; i < 5; i++) client.send({ event: 'chat', data: i });
    expect((await client.closedWithin()).code).toBe(4005);
    const lines = logger.lines.filter((line) => line.message.includes('with 4005'));
    expect(lines.map((line) => line.level)).toEqual(['warn']);
  });
});

describe('Redis errors', () => {
  test('a RedisHelper retrying an unreachable Redis logs one line, without a stack, not one per retry', async () => {
    const logger = recordingLogger();
    const redis = new RedisHelper({
      name: 'down',
      host: '127.0.0.1',
      port: await freePort(),
      autoConnect: true,
      logger,
    });
    let errors = 0;
    redis.getClient().on('error', () => errors++);
    cleanups.push(() => redis.disconnect());
    const until = Date.now() + 3_000;
    while (errors < 4 && Date.now() < until) await Bun.sleep(50);
    expect(errors).toBeGreaterThanOrEqual(4);
    const lines = logger.lines.filter((line) => line.level === 'error');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.message).toContain('Redis error on "down"');
    expect(lines[0]?.message).not.toContain('\n    at ');
  });
});
