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
 * Makes a duplicated connection fit to publish. Every command is bounded (ioredis' `commandTimeout`,
 * read when a command is sent; 0: none): past it the command's promise rejects with `Command timed
 * out`, although Redis may still run it later (the history publish script guards against that
 * itself, see redis-store.ts). And a command in flight when the connection drops is not sent again
 * after the reconnect (ioredis' `autoResendUnfulfilledCommands`, on by default): Redis may have run
 * it before it died (a publish script is persisted by AOF before its reply is lost), and running it
 * twice would publish twice under two positions. It fails instead, like any command during an
 * outage. Must be called before the client connects (a cluster's node connections copy
 * `redisOptions` then).
 */
export function asPublisher(client: TRedisClient, timeout: number): TRedisClient {
  const bounds: { autoResendUnfulfilledCommands: false; commandTimeout?: number } = {
    autoResendUnfulfilledCommands: false,
  };
  if (timeout > 0) bounds.commandTimeout = timeout;
  if ((client as Cluster).isCluster) {
    const cluster = client as Cluster;
    // A copy: the duplicate shares the options object of the connection it came from.
    cluster.options.redisOptions = { ...cluster.options.redisOptions, ...bounds };
  } else {
    Object.assign((client as Redis).options, bounds);
  }
  return client;
}
