import { adaptLogger, errorText, LogRateLimiter, logFields } from '../common/log.ts';
import { createConsoleLogger } from '../common/logger.ts';
import type { ILogger } from '../common/types.ts';
import { closeRedisClient, type TRedisClient, waitForRedisReady } from './wait-ready.ts';

export interface IRedisHelperCallbacks {
  onInitialized?: (opts: { name: string; helper: DefaultRedisHelper }) => void;
  onConnected?: (opts: { name: string; helper: DefaultRedisHelper }) => void;
  onReady?: (opts: { name: string; helper: DefaultRedisHelper }) => void;
  onError?: (opts: { name: string; helper: DefaultRedisHelper; error: unknown }) => void;
}

export interface IDefaultRedisHelperOptions extends IRedisHelperCallbacks {
  name: string;
  client: TRedisClient;
  logger?: ILogger;
}

/**
 * Base Redis helper: owns one ioredis client (single node or cluster) and wires
 * the lifecycle callbacks. The WebSocket helpers only call `getClient()` and
 * `duplicate()` what they need.
 */
export class DefaultRedisHelper {
  readonly name: string;
  protected readonly client: TRedisClient;
  protected readonly logger: ILogger;

  constructor(opts: IDefaultRedisHelperOptions) {
    if (!opts?.client) throw new Error('[DefaultRedisHelper] client is required');
    this.name = opts.name;
    this.client = opts.client;
    this.logger = opts.logger ?? createConsoleLogger(`Redis:${opts.name}`);

    const { onConnected, onReady, onError, onInitialized } = opts;
    this.client.on('connect', () => onConnected?.({ name: this.name, helper: this }));
    this.client.on('ready', () => onReady?.({ name: this.name, helper: this }));
    // Always listen for `error`: an ioredis client without an error listener
    // reports every reconnect failure as an unhandled error event. Without `onError`, one line
    // (no stack) per 10 s at most: a retry every second through an outage is not worth a line each.
    const limiter = new LogRateLimiter();
    this.client.on('error', (error: unknown) => {
      if (onError) return onError({ name: this.name, helper: this, error });
      const text = errorText(error);
      const held = limiter.take(text);
      if (held === undefined) return;
      const more = held > 0 ? ` (${held} more since the last line)` : '';
      adaptLogger(this.logger).error(
        `Redis error on "${this.name}": ${text}${more}`,
        logFields({ redis: this.name, held }),
      );
    });
    onInitialized?.({ name: this.name, helper: this });
  }

  getClient(): TRedisClient {
    return this.client;
  }

  /** Connects (when created with `autoConnect: false`) and waits for `ready`. */
  async connect(timeoutMs?: number): Promise<void> {
    await waitForRedisReady(this.client, timeoutMs);
  }

  async disconnect(): Promise<void> {
    await closeRedisClient(this.client);
  }
}
