import { WebSocketChannels, WebSocketLimits } from '../common/constants.ts';
import type { ILogger, IRedisConnection, IRedisSocketMessage } from '../common/types.ts';
import { closeRedisClient, type TRedisClient, waitForRedisReady } from '../redis/wait-ready.ts';
import { isCommandChannel } from './commands.ts';
import { channelFor, decodeEnvelope, encodeEnvelope } from './envelope.ts';

/** Carries messages between instances. */
export interface ICrossInstanceBus {
  start(): Promise<void>;
  /**
   * Publishes without ever throwing; returns false when the message could not be
   * handed to Redis. `dataJson` is the payload already serialized, if it was.
   */
  publish(message: IRedisSocketMessage, dataJson?: string): boolean;
  stop(): Promise<void>;
  /** Why the bus cannot carry messages right now (empty when it can); readiness reports it. */
  connectionProblems(): string[];
}

/** The Redis connections the history needs beside Pub/Sub (see history/redis-store.ts). */
export interface IHistoryConnections {
  /** The publishing connection (runs the history scripts). */
  publisher(): TRedisClient | undefined;
  /**
   * Resolves once every message published before the call has been received on the subscriber
   * connection (a PING queued behind them), so a history read and live traffic can be merged.
   */
  barrier(): Promise<void>;
  /** Counts a history publication that could not be handed to Redis. */
  countDropped(notReady: boolean): void;
}

/** Single-instance mode: nothing leaves the process. */
export class LocalOnlyBus implements ICrossInstanceBus {
  async start(): Promise<void> {}
  publish(): boolean {
    return false;
  }
  async stop(): Promise<void> {}
  connectionProblems(): string[] {
    return [];
  }
}

export interface IRedisBusOptions {
  connection: IRedisConnection;
  serverId: string;
  logger: ILogger;
  readyTimeout?: number;
  onMessage: (message: IRedisSocketMessage) => void;
}

/** Counters a caller can read to see what the bus dropped. */
export interface IRedisBusStats {
  published: number;
  /** Messages not published because Redis was not connected (Pub/Sub keeps no backlog). */
  droppedWhileDisconnected: number;
  received: number;
  /** Envelopes from Redis that failed validation. */
  malformed: number;
  /** Reconnection attempts of the publisher and subscriber connections. */
  reconnects: number;
  /** History publications whose script failed after being sent (Redis error or connection lost). */
  historyFailed: number;
}

const SUBSCRIBED_PATTERNS = [
  WebSocketChannels.forRoomPattern(),
  WebSocketChannels.forClientPattern(),
  WebSocketChannels.forUserPattern(),
];

/**
 * Redis Pub/Sub bus: one duplicated connection publishes, another subscribes to
 * `ws:broadcast` and the room / client / user patterns. Messages carrying our
 * own serverId are skipped (they were already delivered locally), except positioned ones.
 *
 * The two duplicates are made when the bus is constructed (with the helper) and
 * connected by `start()` (the helper's `configure()`) when they are still in
 * ioredis' `wait` status, i.e. when the given client was created with
 * `lazyConnect` (`RedisHelper` with `autoConnect: false`): nothing touches the
 * network before `configure()` then.
 */
export class RedisBus implements ICrossInstanceBus, IHistoryConnections {
  readonly stats: IRedisBusStats = {
    published: 0,
    droppedWhileDisconnected: 0,
    received: 0,
    malformed: 0,
    reconnects: 0,
    historyFailed: 0,
  };
  private readonly base: TRedisClient;
  private pub?: TRedisClient;
  private sub?: TRedisClient;
  private lastMalformedLog = 0;
  private nextBarrier?: Promise<void>;

  constructor(private readonly opts: IRedisBusOptions) {
    const base = opts.connection.getClient();
    if (!base || typeof base.duplicate !== 'function') {
      throw new Error('[WebSocketServerHelper] redisConnection.getClient() did not return an ioredis client');
    }
    this.base = base;
    this.duplicateConnections();
  }

  async start(): Promise<void> {
    // A failed start closed the pair; a retry gets a fresh one.
    if (!this.pub || !this.sub) this.duplicateConnections();
    const pub = this.pub as TRedisClient;
    const sub = this.sub as TRedisClient;
    const timeout = this.opts.readyTimeout ?? WebSocketLimits.REDIS_READY_TIMEOUT;
    try {
      // waitForRedisReady connects a duplicate that is still in `wait`.
      await Promise.all([waitForRedisReady(pub, timeout), waitForRedisReady(sub, timeout)]);
      // The command channels have their own listener (bus/commands.ts).
      sub.on('message', (channel: string, raw: string) => {
        if (!isCommandChannel(channel)) this.receive(raw);
      });
      sub.on('pmessage', (_pattern: string, _channel: string, raw: string) => this.receive(raw));
      await sub.subscribe(WebSocketChannels.BROADCAST);
      await sub.psubscribe(...SUBSCRIBED_PATTERNS);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The publisher and the subscriber, each with an error listener from the start (an outage is logged, never thrown). */
  private duplicateConnections(): void {
    const { logger } = this.opts;
    const pub = this.base.duplicate();
    const sub = this.base.duplicate();
    pub.on('error', (error: unknown) => logger.warn('Redis publisher error', describe(error)));
    sub.on('error', (error: unknown) => logger.warn('Redis subscriber error', describe(error)));
    for (const client of [pub, sub]) client.on('reconnecting', () => this.stats.reconnects++);
    this.pub = pub;
    this.sub = sub;
  }

  publish(message: IRedisSocketMessage, dataJson?: string): boolean {
    const pub = this.pub;
    // Pub/Sub has no backlog: queueing while disconnected would only grow memory
    // and replay stale messages later, so drop (and count) instead.
    if (pub?.status !== 'ready') {
      this.stats.droppedWhileDisconnected++;
      return false;
    }
    const channel = channelFor(message.type, message.target);
    pub.publish(channel, encodeEnvelope(message, dataJson)).catch((error: unknown) => {
      this.opts.logger.warn('Redis publish failed', describe(error));
    });
    this.stats.published++;
    return true;
  }

  /** Both connections ready: messages can cross instances. */
  get connected(): boolean {
    return this.pub?.status === 'ready' && this.sub?.status === 'ready';
  }

  publisher(): TRedisClient | undefined {
    return this.pub;
  }

  /** The subscribing connection (server commands subscribe their channels on it too). */
  subscriber(): TRedisClient | undefined {
    return this.sub;
  }

  barrier(): Promise<void> {
    // Callers of the same turn share one PING, sent after all of them asked (so after each one's
    // history read was answered): a crowd of recovering joins costs one round trip, not one each.
    this.nextBarrier ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.nextBarrier = undefined;
        const sub = this.sub;
        if (sub?.status !== 'ready') {
          reject(new Error(`Redis subscriber is not connected (status: ${sub?.status})`));
          return;
        }
        // ioredis allows PING in subscriber mode; Redis answers it after the messages queued before it.
        sub.ping().then(() => resolve(), reject);
      });
    });
    return this.nextBarrier;
  }

  countDropped(notReady: boolean): void {
    if (notReady) this.stats.droppedWhileDisconnected++;
    else this.stats.historyFailed++;
  }

  async stop(): Promise<void> {
    const clients = [this.pub, this.sub].filter((c): c is TRedisClient => c !== undefined);
    this.pub = undefined;
    this.sub = undefined;
    await Promise.all(clients.map((client) => closeRedisClient(client)));
  }

  connectionProblems(): string[] {
    const problems: string[] = [];
    for (const [role, client] of [
      ['publisher', this.pub],
      ['subscriber', this.sub],
    ] as const) {
      if (client?.status !== 'ready') problems.push(`redis ${role} ${client?.status ?? 'closed'}`);
    }
    return problems;
  }

  private receive(raw: string): void {
    const decoded = decodeEnvelope(raw);
    if (!decoded.ok) {
      this.stats.malformed++;
      // Rate-limited: a misbehaving publisher must not flood the log.
      const now = Date.now();
      if (now - this.lastMalformedLog > 5_000) {
        this.lastMalformedLog = now;
        this.opts.logger.warn(`Dropped malformed Redis message (${decoded.reason})`);
      }
      return;
    }
    // Our own messages were delivered locally, except history publications: every instance,
    // this one included, delivers those from here so all see one offset order.
    if (decoded.message.serverId === this.opts.serverId && decoded.message.offset === undefined) return;
    this.stats.received++;
    this.opts.onMessage(decoded.message);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
