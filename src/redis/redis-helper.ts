import { Redis, type RedisOptions } from 'ioredis';
import type { ILogger } from '../common/types.ts';
import { DefaultRedisHelper, type IRedisHelperCallbacks } from './default-redis-helper.ts';

export interface IRedisHelperOptions extends IRedisHelperCallbacks {
  name: string;
  host: string;
  port: number;
  user?: string;
  password?: string;
  database?: number;
  /**
   * Connect in the constructor (`true`). Default `false`: the client connects on its first command
   * or `connect()`. The WebSocket helpers only duplicate it, so by default the helper's own client never
   * opens a connection (no idle third connection retrying, and logging, through a Redis outage).
   */
  autoConnect?: boolean;
  /** Give up reconnecting after this many attempts in a row (default: never give up). */
  maxRetry?: number;
  logger?: ILogger;
}

/** Reconnect delay: quick first retries, capped at one second so pub/sub recovers fast. */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * attempt, 1_000);
}

/** Single-node Redis on ioredis. */
export class RedisHelper extends DefaultRedisHelper {
  constructor(opts: IRedisHelperOptions) {
    if (!opts || typeof opts.host !== 'string' || !Number.isInteger(opts.port)) {
      throw new Error('[RedisHelper] host (string) and port (integer) are required');
    }
    const maxRetry = opts.maxRetry;
    const options: RedisOptions = {
      host: opts.host,
      port: opts.port,
      username: opts.user,
      password: opts.password,
      db: opts.database ?? 0,
      lazyConnect: opts.autoConnect !== true,
      retryStrategy: (attempt) =>
        maxRetry !== undefined && attempt > maxRetry ? null : reconnectDelay(attempt),
    };
    super({ ...opts, client: new Redis(options) });
  }
}
