import type { Cluster, Redis } from 'ioredis';
import { WebSocketLimits } from '../common/constants.ts';
import type { TRedisClient } from './wait-ready.ts';

/**
 * The `redisCommandTimeout` option: a non-negative number of ms (0: no bound), default
 * `WebSocketLimits.REDIS_COMMAND_TIMEOUT`. Throws a clear message otherwise.
 */
export function resolveCommandTimeout(prefix: string, value: unknown): number {
  if (value === undefined) return WebSocketLimits.REDIS_COMMAND_TIMEOUT;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2 ** 31 - 1) {
    throw new Error(`${prefix} redisCommandTimeout must be a number of ms >= 0 (0: no bound)`);
  }
  return Math.ceil(value);
}

/**
 * Bounds every command of a duplicated connection (ioredis' `commandTimeout`, read when a command
 * is sent): past it the command's promise rejects with `Command timed out`, although Redis may still
 * run it later (the history publish script guards against that itself, see redis-store.ts). Must be
 * called before the client connects (a cluster's node connections copy `redisOptions` then).
 */
export function boundCommands(client: TRedisClient, timeout: number): TRedisClient {
  if (timeout <= 0) return client;
  if ((client as Cluster).isCluster) {
    const cluster = client as Cluster;
    // A copy: the duplicate shares the options object of the connection it came from.
    cluster.options.redisOptions = { ...cluster.options.redisOptions, commandTimeout: timeout };
  } else {
    (client as Redis).options.commandTimeout = timeout;
  }
  return client;
}
