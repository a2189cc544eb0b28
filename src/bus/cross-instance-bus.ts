import { WebSocketChannels, WebSocketLimits } from '../common/constants.ts';
import type { ILogger, IRedisConnection, IRedisSocketMessage } from '../common/types.ts';
import { closeRedisClient, type TRedisClient, waitForRedisReady } from '../redis/wait-ready.ts';
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
}

const SUBSCRIBED_PATTERNS = [
  WebSocketChannels.forRoomPattern(),
  WebSocketChannels.forClientPattern(),
  WebSocketChannels.forUserPattern(),
];

/**
 * Redis Pub/Sub bus: one duplicated connection publishes, another subscribes to
 * `ws:broadcast` and the room / client / user patterns. Messages carrying our
 * own serverId are skipped (they were already delivered locally).
 *
 * The two duplicates are made when the bus is constructed (with the helper) and
 * connected by `start()` (the helper's `configure()`) when they are still in
 * ioredis' `wait` status, i.e. when the given client was created with
 * `lazyConnect` (`RedisHelper` with `autoConnect: false`): nothing touches the
 * network before `configure()` then.
 */
export class RedisBus implements ICrossInstanceBus {
  readonly stats: IRedisBusStats = { published: 0, droppedWhileDisconnected: 0, received: 0, malformed: 0 };
  private readonly base: TRedisClient;
  private pub?: TRedisClient;
  private sub?: TRedisClient;
  private lastMalformedLog = 0;

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
      sub.on('message', (_channel: string, raw: string) => this.receive(raw));
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
    if (decoded.message.serverId === this.opts.serverId) return;
    this.stats.received++;
    this.opts.onMessage(decoded.message);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
