import type { Cluster, Redis } from 'ioredis';
import { WebSocketLimits } from '../common/constants.ts';
import type { IRedisConnection } from '../common/types.ts';

export type TRedisClient = Redis | Cluster;

/** Duck-typed check: anything with a `getClient()` method is accepted. */
export function isRedisConnection(value: unknown): value is IRedisConnection {
  return typeof (value as IRedisConnection | null | undefined)?.getClient === 'function';
}

/**
 * Connects a client created with `lazyConnect` and resolves once it is `ready`.
 * Rejects with `Redis client did not become ready within {ms}ms` after `timeoutMs`.
 */
export function waitForRedisReady(
  client: TRedisClient,
  timeoutMs: number = WebSocketLimits.REDIS_READY_TIMEOUT,
): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'wait') {
    // A failed first connect is retried by ioredis itself; the bound below decides.
    client.connect().catch(() => {});
  }
  return new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis client did not become ready within ${timeoutMs}ms`));
    }, timeoutMs);
    client.once('ready', onReady);
  });
}

/**
 * Quits politely when connected and waits (bounded) for the connection to end;
 * otherwise drops it at once. A client between reconnect attempts has no socket:
 * `disconnect()` just cancels the next attempt and ioredis emits no `end`, so
 * there is nothing to wait for.
 */
export async function closeRedisClient(client: TRedisClient, timeoutMs = 2_000): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  const ended = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
  await ended;
}
