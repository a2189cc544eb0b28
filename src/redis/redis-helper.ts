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
  /** Connect right away (default `true`); with `false`, the first user connects it. */
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
      lazyConnect: opts.autoConnect === false,
      retryStrategy: (attempt) =>
        maxRetry !== undefined && attempt > maxRetry ? null : reconnectDelay(attempt),
    };
    super({ ...opts, client: new Redis(options) });
  }
}
