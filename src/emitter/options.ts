import type { ILogger, IRedisConnection } from '../common/types.ts';
import type { THistoryFn } from '../history/types.ts';

/** The options of `new WebSocketEmitter(options)`. */
export interface IWebSocketEmitterOptions {
  identifier?: string;
  redisConnection: IRedisConnection;
  /** Console-style or pino-compatible (see the server helper's `logger`). */
  logger?: ILogger;
  /** As the server helper's `structuredLogs`. */
  structuredLogs?: boolean;
  /** Bound on waiting for the Redis connection in `configure()`. Default 30 000 ms. */
  redisReadyTimeout?: number;
  /**
   * Bound (ms) on each Redis command's wait (every call). Past it the operation fails as in an outage
   * (the call rejects), and a publication to a history room that Redis gets to only later (a stalled Redis,
   * SIGSTOP, a long fork) is not published at all. Default 2 000 ms; 0: no bound. See docs/recovery.md.
   */
  redisCommandTimeout?: number;
  /** The same `historyFn` as the servers': `toRoom` to such a room gets a position. */
  historyFn?: THistoryFn;
  /** The servers' `busSecret`: what the emitter publishes is signed with the first secret. */
  busSecret?: string | string[];
  /** As the servers' `maxEnvelopeBytes`: a larger message is refused (the call rejects). Default 1 MiB. */
  maxEnvelopeBytes?: number;
  /**
   * Most characters of envelopes the calls waiting for Redis may hold at once (sent, not answered
   * yet); past it a call rejects without sending (`maxPublishQueueBytes ... message not published`).
   * One call alone always goes. Default 16 MiB, as the servers'. `publishQueue()` reads the level.
   */
  maxPublishQueueBytes?: number;
}
