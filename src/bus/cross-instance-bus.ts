import type { Cluster, Redis } from 'ioredis';
import { WebSocketChannels, WebSocketLimits } from '../common/constants.ts';
import { LogRateLimiter, logFields } from '../common/log.ts';
import type { ILogger, IRedisConnection, IRedisSocketMessage } from '../common/types.ts';
import { asPublisher } from '../redis/command-timeout.ts';
import { hashSlot } from '../redis/hash-slot.ts';
import { isCluster, pubSubKindOf, type TPubSubKind } from '../redis/pubsub-kind.ts';
import { closeRedisClient, type TRedisClient, waitForRedisReady } from '../redis/wait-ready.ts';
import { ChannelSubscriptions } from './channel-subscriptions.ts';
import { isCommandChannel } from './commands.ts';
import { channelFor, decodeEnvelope, encodeEnvelope } from './envelope.ts';
import { BusGuard } from './guard.ts';
import { type IPublishQueueStats, PublishQueue } from './publish-queue.ts';
import { pingShardSubscribers, reportMixedFleet, shardedSubscriber } from './sharded-pubsub.ts';
import { BusSigner } from './signing.ts';

/**
 * How an instance subscribes on Redis (see docs/scaling.md):
 * - `pattern`: the broadcast channel and the room / client / user patterns; every instance
 *   receives every message of the fleet and drops what it has no recipient for.
 * - `rooms`: the broadcast channel, plus one channel per room with local members, per local
 *   authenticated client (`ws:client:<id>`; its id room `ws:room:<id>` is a room like any other)
 *   and per local user; an instance receives only what it has a recipient for.
 */
export type TSubscriptionMode = 'pattern' | 'rooms';

export const SUBSCRIPTION_MODES: readonly TSubscriptionMode[] = ['pattern', 'rooms'];

/** How long a `join` reply waits for its SUBSCRIBE to be acknowledged before answering anyway. */
export const SUBSCRIBE_WAIT_BOUND_MS = 5_000;

/** The room channels a join or a recovery waits for (`rooms` mode); no-ops in pattern mode. */
export interface IRoomChannels {
  /** Resolves (bounded) once the rooms' channels are subscribed; undefined when they already are. */
  whenSubscribed(rooms: readonly string[]): Promise<void> | undefined;
  /** Keeps a room's channel subscribed while no local member holds it (a recovery's history read). */
  hold(room: string): void;
  release(room: string): void;
  /**
   * Holds a connecting client's own channels (client id, id room, user) and `rooms`' channels until
   * `release()`; `ready` resolves (bounded) once all are subscribed, undefined when they already are.
   */
  holdClient(
    clientId: string,
    userId: string | undefined,
    rooms: readonly string[],
  ): { ready: Promise<void> | undefined; release(): void };
}

/**
 * Told when a room, a user or an authenticated client starts or stops having a presence on this
 * instance (the `rooms` subscription mode subscribes its Redis channels only meanwhile). The server's
 * client registry is the reference count: each is called once per transition.
 */
export interface IMembershipListener {
  roomOpened(room: string): void;
  roomClosed(room: string): void;
  userOpened(userId: string): void;
  userClosed(userId: string): void;
  clientOpened(clientId: string): void;
  clientClosed(clientId: string): void;
}

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
  /** `rooms` mode: told of local membership changes (absent otherwise, so the registry pays nothing). */
  readonly membership?: IMembershipListener;
  /** `rooms` mode only. */
  readonly roomChannels?: IRoomChannels;
}

/** The Redis connections the history needs beside Pub/Sub (see history/redis-store.ts). */
export interface IHistoryConnections {
  /** The publishing connection (runs the history scripts). */
  publisher(): TRedisClient | undefined;
  /** The fleet's Pub/Sub: the publish script and the key names depend on it. */
  readonly pubSub: TPubSubKind;
  /**
   * Resolves once every message published to the rooms before the call has been received on the
   * subscriber connection (a PING queued behind them), so a history read and live traffic can be merged.
   */
  barrier(rooms: readonly string[]): Promise<void>;
  /** Counts a history publication that could not be handed to Redis. */
  countDropped(notReady: boolean, timedOut?: boolean): void;
  /** `redisCommandTimeout`, resolved (0: none). */
  readonly commandTimeout: number;
  /** `busSecret` on: signs what the publish script publishes (see signing.ts). */
  readonly signer?: BusSigner;
  /** Counts (and logs) a publication refused for its size (see BusGuard); true when it is too large. */
  tooLarge(json: string, what: string, reserve?: number): boolean;
  /**
   * Takes `size` characters of `maxPublishQueueBytes` for a publication about to be sent: a ticket, or
   * -1 when that would pass the limit (dropped and counted in `publishQueueFull`). Given back with
   * `releasePublication` once Redis answered.
   */
  admitPublication(size: number): number;
  releasePublication(size: number, ticket: number): void;
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
  /** Default `pattern`, and `rooms` (the only one possible) with sharded Pub/Sub. */
  subscriptionMode?: TSubscriptionMode;
  /** `dataJson`: the payload as received, to forward as the frame body (see decodeEnvelope). */
  onMessage: (message: IRedisSocketMessage, dataJson?: string) => void;
  /** Metrics on: envelopes carry `sentAt`, and each received one's age (ms) is reported here. */
  onLatency?: (ms: number) => void;
  /** `busSecret`, resolved: every message published is signed with the first, accepted with any. */
  busSecrets?: readonly string[];
  /** Default `WebSocketLimits.MAX_ENVELOPE_BYTES`. */
  maxEnvelopeBytes?: number;
  /** `redisCommandTimeout`, resolved: bounds every command of the publishing connection (0: none). */
  commandTimeout?: number;
  /** `maxPublishQueueBytes`, resolved. Default `WebSocketLimits.MAX_PUBLISH_QUEUE_BYTES`. */
  maxPublishQueueBytes?: number;
}

/** Counters a caller can read to see what the bus dropped (and the publish queue's gauges). */
export interface IRedisBusStats extends IPublishQueueStats {
  published: number;
  /** Messages not published because Redis was not connected (Pub/Sub keeps no backlog). */
  droppedWhileDisconnected: number;
  received: number;
  /**
   * Messages from Redis (envelopes, commands, answers) that failed validation: not JSON, wrong
   * fields, nested deeper than `WebSocketLimits.MAX_BUS_JSON_DEPTH`, a room envelope aimed at an
   * internal topic.
   */
  malformed: number;
  /** Messages from Redis larger than `maxEnvelopeBytes`, and messages not published for that. */
  oversize: number;
  /** `busSecret` on: messages from Redis without a valid signature. */
  unauthenticated: number;
  /** Acknowledged messages relayed by other instances and refused here: too many already waiting. */
  deliverRefused: number;
  /** Reconnection attempts of the publisher and subscriber connections. */
  reconnects: number;
  /** History publications whose script failed after being sent (Redis error or connection lost). */
  historyFailed: number;
  /**
   * History publications dropped because Redis did not answer within `redisCommandTimeout` (a
   * stalled Redis); the publish script refuses them when Redis runs them later.
   */
  historyTimedOut: number;
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
    oversize: 0,
    unauthenticated: 0,
    deliverRefused: 0,
    reconnects: 0,
    historyFailed: 0,
    historyTimedOut: 0,
    publishQueueFull: 0,
    publishFailed: 0,
    publishQueueMessages: 0,
    publishQueueBytes: 0,
  };
  /** Size, signature and depth checks of what comes from Redis (and the size of what goes). */
  readonly guard: BusGuard;
  readonly signer?: BusSigner;
  private readonly base: TRedisClient;
  private pub?: TRedisClient;
  private sub?: TRedisClient;
  private nextBarrier?: Promise<void>;
  /** Rooms of the barrier callers of this turn (sharded: one PING per shard among them). */
  private barrierRooms = new Set<string>();
  readonly mode: TSubscriptionMode;
  readonly pubSub: TPubSubKind;
  readonly commandTimeout: number;
  /** `rooms` mode: the channels this instance has recipients for. */
  private readonly channels?: ChannelSubscriptions;
  readonly membership?: IMembershipListener;
  readonly roomChannels?: IRoomChannels;

  /** What waits to be published (see publish-queue.ts). */
  private readonly queue: PublishQueue;

  /** How an envelope this instance published starts (`encodeEnvelope` writes `serverId` first). */
  private readonly ownPrefix: string;

  constructor(private readonly opts: IRedisBusOptions) {
    this.ownPrefix = `{"serverId":${JSON.stringify(opts.serverId)},`;
    this.commandTimeout = opts.commandTimeout ?? 0;
    this.signer = opts.busSecrets ? new BusSigner(opts.busSecrets) : undefined;
    this.guard = new BusGuard({
      logger: opts.logger,
      stats: this.stats,
      maxEnvelopeBytes: opts.maxEnvelopeBytes ?? WebSocketLimits.MAX_ENVELOPE_BYTES,
      signer: this.signer,
    });
    const base = opts.connection.getClient();
    if (!base || typeof base.duplicate !== 'function') {
      throw new Error('[WebSocketServerHelper] redisConnection.getClient() did not return an ioredis client');
    }
    this.base = base;
    this.pubSub = pubSubKindOf(opts.connection);
    if (this.pubSub === 'sharded' && opts.subscriptionMode === 'pattern') {
      throw new Error(
        '[WebSocketServerHelper] subscriptionMode "pattern" needs classic Pub/Sub: sharded Pub/Sub has no pattern subscriptions. Use "rooms", or RedisClusterHelper({ pubSub: "classic" })',
      );
    }
    this.mode = opts.subscriptionMode ?? (this.pubSub === 'sharded' ? 'rooms' : 'pattern');
    if (this.mode === 'rooms') {
      const sharded = this.pubSub === 'sharded';
      const channels = new ChannelSubscriptions(
        sharded ? shardedSubscriber(() => this.sub) : () => this.sub,
        opts.logger,
        [WebSocketChannels.BROADCAST],
        sharded ? hashSlot : undefined,
      );
      this.channels = channels;
      this.membership = membershipChannels(channels);
      const bounded = sharedBound(SUBSCRIBE_WAIT_BOUND_MS);
      this.roomChannels = {
        whenSubscribed: (rooms) => {
          const ready = channels.whenSubscribed(rooms.map((room) => WebSocketChannels.forRoom({ room })));
          return ready && bounded(ready);
        },
        hold: (room) => channels.acquire(WebSocketChannels.forRoom({ room })),
        release: (room) => channels.release(WebSocketChannels.forRoom({ room })),
        holdClient: (clientId, userId, rooms) => {
          const names = [
            WebSocketChannels.forClient({ clientId }),
            WebSocketChannels.forRoom({ room: clientId }),
          ];
          if (userId !== undefined) names.push(WebSocketChannels.forUser({ userId }));
          for (const room of rooms) names.push(WebSocketChannels.forRoom({ room }));
          for (const name of names) channels.acquire(name);
          const ready = channels.whenSubscribed(names);
          return {
            ready: ready && bounded(ready),
            release: () => {
              for (const name of names) channels.release(name);
            },
          };
        },
      };
    }
    this.queue = new PublishQueue({
      client: () => this.pub,
      pubSub: this.pubSub,
      stats: this.stats,
      logger: opts.logger,
      limit: opts.maxPublishQueueBytes ?? WebSocketLimits.MAX_PUBLISH_QUEUE_BYTES,
    });
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
      // receive() never throws: a listener throwing inside ioredis would lose the messages read with it.
      sub.on('message', (channel: string, raw: string) => {
        if (!isCommandChannel(channel)) this.receive(raw);
      });
      const channels = this.channels;
      if (this.pubSub === 'sharded') {
        // ioredis re-subscribes each shard's channels itself when a shard's subscriber is replaced.
        sub.on('smessage', (_channel: string, raw: string) => this.receive(raw));
        await channels?.restore();
      } else if (channels) {
        // Every (re)connect starts with no subscriptions: subscribe all the wanted ones again.
        sub.on('ready', () => void channels.restore().catch(() => {}));
        await channels.restore();
      } else {
        sub.on('pmessage', (_pattern: string, _channel: string, raw: string) => this.receive(raw));
        await sub.subscribe(WebSocketChannels.BROADCAST);
        await sub.psubscribe(...SUBSCRIBED_PATTERNS);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.checkFleet(pub);
  }

  /** On a cluster: a fleet half classic, half sharded is logged loudly (see sharded-pubsub.ts). */
  private checkFleet(pub: TRedisClient): void {
    if (isCluster(pub)) void reportMixedFleet(pub, this.pubSub, this.opts.logger);
  }

  /** The publisher and the subscriber, each with an error listener from the start (an outage is logged, never thrown). */
  private duplicateConnections(): void {
    const { logger } = this.opts;
    const pub = asPublisher(this.base.duplicate(), this.opts.commandTimeout ?? 0);
    const sub =
      this.pubSub === 'sharded'
        ? (this.base as Cluster).duplicate([], { shardedSubscribers: true })
        : // `rooms` mode restores its own subscriptions on every `ready` (see ChannelSubscriptions):
          // ioredis' resubscribe would bring back channels released while the connection was down.
          this.channels
          ? duplicateWithoutResubscribe(this.base)
          : this.base.duplicate();
    const limiter = new LogRateLimiter();
    const onError = (connection: string) => (error: unknown) => {
      const text = describe(error);
      const held = limiter.take(`${connection}:${text}`);
      if (held === undefined) return; // the same error again within 10 s: counted, not logged
      const more = held > 0 ? ` (${held} more since the last line)` : '';
      logger.warn(`Redis ${connection} error: ${text}${more}`, logFields({ connection, held }));
    };
    pub.on('error', onError('publisher'));
    // What was in flight will not be answered (see PublishQueue.connectionLost).
    pub.on('close', () => this.queue.connectionLost());
    sub.on('error', onError('subscriber'));
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
    const stamped = this.opts.onLatency ? { ...message, sentAt: Date.now() } : message;
    const envelope = encodeEnvelope(stamped, dataJson);
    if (this.guard.tooLarge(envelope, 'envelope')) return false;
    // Sent at the end of the turn with the rest of the turn's publications (see publish-queue.ts).
    if (!this.queue.push(channel, this.guard.seal(envelope))) return false;
    this.stats.published++;
    return true;
  }

  /**
   * The channel and envelope `publish` would send, for a caller that sends it itself inside a
   * script (presence writes, which publish only when some instance listens: not counted in
   * `published`); undefined while the publisher is not ready (counted as dropped).
   */
  encode(message: IRedisSocketMessage, dataJson?: string): { channel: string; message: string } | undefined {
    if (this.pub?.status !== 'ready') {
      this.stats.droppedWhileDisconnected++;
      return undefined;
    }
    const stamped = this.opts.onLatency ? { ...message, sentAt: Date.now() } : message;
    const envelope = encodeEnvelope(stamped, dataJson);
    if (this.guard.tooLarge(envelope, 'envelope')) return undefined;
    return { channel: channelFor(message.type, message.target), message: this.guard.seal(envelope) };
  }

  /** Publishes an envelope made by `encode` (never throws; queued like `publish`). */
  publishEncoded(channel: string, message: string): void {
    if (this.pub?.status !== 'ready') return;
    this.queue.push(channel, message);
  }

  /** Both connections ready: messages can cross instances. */
  get connected(): boolean {
    return this.pub?.status === 'ready' && this.sub?.status === 'ready';
  }

  /**
   * The publishing connection, for a command of its own (a script, a server command): the
   * publications queued before are sent first, so the connection keeps the callers' order.
   */
  publisher(): TRedisClient | undefined {
    this.queue.flush();
    return this.pub;
  }

  admitPublication(size: number): number {
    return this.queue.admit(size);
  }

  releasePublication(size: number, ticket: number): void {
    this.queue.release(size, ticket);
  }

  /** The subscribing connection (server commands subscribe their channels on it too). */
  subscriber(): TRedisClient | undefined {
    return this.sub;
  }

  barrier(rooms: readonly string[]): Promise<void> {
    for (const room of rooms) this.barrierRooms.add(room);
    // Callers of the same turn share one PING, sent after all of them asked (so after each one's
    // history read was answered): a crowd of recovering joins costs one round trip, not one each.
    this.nextBarrier ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.nextBarrier = undefined;
        const asked = [...this.barrierRooms];
        this.barrierRooms = new Set();
        const sub = this.sub;
        if (sub?.status !== 'ready') {
          reject(new Error(`Redis subscriber is not connected (status: ${sub?.status})`));
          return;
        }
        // Sharded: each shard's own subscriber connection (the node that published).
        if (this.pubSub === 'sharded') {
          pingShardSubscribers(sub, asked).then(resolve, reject);
          return;
        }
        // ioredis allows PING in subscriber mode; Redis answers it after the messages queued before it.
        sub.ping().then(() => resolve(), reject);
      });
    });
    return this.nextBarrier;
  }

  tooLarge(json: string, what: string, reserve?: number): boolean {
    return this.guard.tooLarge(json, what, reserve);
  }

  countDropped(notReady: boolean, timedOut = false): void {
    if (notReady) this.stats.droppedWhileDisconnected++;
    else if (timedOut) this.stats.historyTimedOut++;
    else this.stats.historyFailed++;
  }

  async stop(): Promise<void> {
    this.queue.flush();
    const clients = [this.pub, this.sub].filter((c): c is TRedisClient => c !== undefined);
    this.channels?.clear();
    this.guard.stop();
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

  /** Never throws (see start()): what fails is dropped and counted. */
  private receive(raw: string): void {
    try {
      this.receiveEnvelope(raw);
    } catch (error) {
      this.guard.drop('malformed', `envelope failed in delivery: ${describe(error)}`);
    }
  }

  private receiveEnvelope(raw: string): void {
    // Our own messages were delivered locally: skip them without parsing or verifying (one that
    // may carry a history offset, delivered from here by every instance, goes through the whole decode).
    const start = this.guard.bodyStart;
    if (raw.startsWith(this.ownPrefix, start) && !raw.includes('"offset"', start)) return;
    const json = this.guard.open(raw, 'envelope');
    if (json === undefined) return;
    const decoded = decodeEnvelope(json);
    if (!decoded.ok) {
      this.guard.drop('malformed', `envelope: ${decoded.reason}`);
      return;
    }
    // Our own messages were delivered locally, except history publications: every instance,
    // this one included, delivers those from here so all see one offset order.
    if (decoded.message.serverId === this.opts.serverId && decoded.message.offset === undefined) return;
    this.stats.received++;
    const { sentAt } = decoded.message;
    if (sentAt !== undefined) this.opts.onLatency?.(Date.now() - sentAt);
    this.opts.onMessage(decoded.message, decoded.dataJson);
  }
}

/** Maps local membership to the channels `rooms` mode subscribes. */
function membershipChannels(channels: ChannelSubscriptions): IMembershipListener {
  return {
    roomOpened: (room) => channels.acquire(WebSocketChannels.forRoom({ room })),
    roomClosed: (room) => channels.release(WebSocketChannels.forRoom({ room })),
    userOpened: (userId) => channels.acquire(WebSocketChannels.forUser({ userId })),
    userClosed: (userId) => channels.release(WebSocketChannels.forUser({ userId })),
    clientOpened: (clientId) => channels.acquire(WebSocketChannels.forClient({ clientId })),
    clientClosed: (clientId) => channels.release(WebSocketChannels.forClient({ clientId })),
  };
}

function duplicateWithoutResubscribe(base: TRedisClient): TRedisClient {
  // A cluster's classic subscriber moves between nodes with the channels it holds at that moment.
  if (isCluster(base)) return base.duplicate();
  return (base as Redis).duplicate({ autoResubscribe: false });
}

/**
 * `withBound` for many callers at once: the waiters of one SUBSCRIBE round share its promise
 * (see ChannelSubscriptions), so they share one bounded promise and one timer too; the bound
 * then runs from the round's first waiter, which is the same turn or one round trip earlier.
 */
function sharedBound(ms: number): (promise: Promise<void>) => Promise<void> {
  let last: Promise<void> | undefined;
  let lastBounded: Promise<void> | undefined;
  return (promise) => {
    if (promise !== last || !lastBounded) {
      last = promise;
      lastBounded = withBound(promise, ms);
    }
    return lastBounded;
  };
}

/** Resolves when `promise` does or after `ms`, whichever is first (a join never hangs on Redis). */
function withBound(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
