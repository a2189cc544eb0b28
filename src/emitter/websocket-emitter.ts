import { COMMAND_CHANNEL, type TCommand, validateCloseCode, validateCommand } from '../bus/commands.ts';
import { channelFor, encodeEnvelope, envelopeHead } from '../bus/envelope.ts';
import { POSITION_TAIL_RESERVE, resolveMaxEnvelopeBytes, resolveMaxPublishQueueBytes } from '../bus/guard.ts';
import { BusSigner, resolveBusSecrets } from '../bus/signing.ts';
import {
  type TWebSocketMessageType,
  WebSocketErrorCodes,
  WebSocketLimits,
  WebSocketMessageTypes,
} from '../common/constants.ts';
import { adaptLogger, errorText, LogRateLimiter, logFields } from '../common/log.ts';
import { createConsoleLogger } from '../common/logger.ts';
import { isValidRoomName } from '../common/room-names.ts';
import type { ILogger, IRedisConnection } from '../common/types.ts';
import { HistoryError } from '../history/errors.ts';
import { resolveHistoryPolicy } from '../history/policy.ts';
import {
  type IHistoryOptions,
  type IHistoryResult,
  queryHistory,
  toHistoryResult,
} from '../history/query.ts';
import { RedisHistoryStore } from '../history/redis-store.ts';
import type { IResolvedHistoryPolicy, IStreamPosition, THistoryFn } from '../history/types.ts';
import { asPublisher, resolveCommandTimeout } from '../redis/command-timeout.ts';
import { publishOn, pubSubKindOf, type TPubSubKind } from '../redis/pubsub-kind.ts';
import {
  closeRedisClient,
  isRedisConnection,
  type TRedisClient,
  waitForRedisReady,
} from '../redis/wait-ready.ts';
import { serializeData, utf8LengthExceeds } from '../utils/json.ts';
import type { IWebSocketEmitterOptions } from './options.ts';

const PREFIX = '[WebSocketEmitter]';

/**
 * Publishes to WebSocket clients from any process (workers, cron jobs) through
 * Redis alone. Its messages carry `serverId: 'emitter'`, so every server
 * instance delivers them.
 */
export class WebSocketEmitter {
  static readonly SERVER_ID = 'emitter';

  readonly identifier: string;
  private readonly connection: IRedisConnection;
  private readonly logger: ILogger;
  private readonly readyTimeout: number;
  private readonly historyFn?: THistoryFn;
  private readonly historyStore: RedisHistoryStore;
  /** Must match the servers': the connection decides it (`RedisClusterHelper`'s `pubSub`). */
  private readonly pubSub: TPubSubKind;
  /** Publishes once `configure()` saw it ready. */
  private client?: TRedisClient;
  /** Duplicated by the constructor until configure() takes it (a configure after a shutdown duplicates afresh). */
  private idle?: TRedisClient;
  private configured?: Promise<void>;
  /** `busSecret` on: everything published is signed with its first secret. */
  private readonly signer?: BusSigner;
  private readonly maxEnvelopeBytes: number;
  /** `redisCommandTimeout`, resolved (0: none): every call rejects past it. */
  private readonly commandTimeout: number;
  /** `maxPublishQueueBytes`, resolved: what the calls waiting for Redis may hold at once. */
  private readonly maxQueue: number;
  private queuedChars = 0;
  private queuedCalls = 0;
  /** Bumped when the connection closes: calls sent before no longer count (see `bounded`). */
  private generation = 0;

  constructor(opts: IWebSocketEmitterOptions) {
    if (!opts || !isRedisConnection(opts.redisConnection)) {
      throw new Error(`${PREFIX} Invalid redis connection!`);
    }
    this.identifier = opts.identifier ?? 'WebSocketEmitter';
    this.connection = opts.redisConnection;
    this.pubSub = pubSubKindOf(opts.redisConnection);
    const secrets = resolveBusSecrets(PREFIX, opts.busSecret);
    this.signer = secrets ? new BusSigner(secrets) : undefined;
    this.maxEnvelopeBytes = resolveMaxEnvelopeBytes(PREFIX, opts.maxEnvelopeBytes);
    this.commandTimeout = resolveCommandTimeout(PREFIX, opts.redisCommandTimeout);
    this.maxQueue = resolveMaxPublishQueueBytes(PREFIX, opts.maxPublishQueueBytes);
    this.historyStore = new RedisHistoryStore(
      () => this.client,
      this.pubSub,
      this.signer,
      this.commandTimeout,
    );
    this.logger = adaptLogger(opts.logger ?? createConsoleLogger(this.identifier), {
      structured: opts.structuredLogs,
      bindings: { identifier: this.identifier },
    });
    this.readyTimeout = opts.redisReadyTimeout ?? WebSocketLimits.REDIS_READY_TIMEOUT;
    if (opts.historyFn !== undefined && typeof opts.historyFn !== 'function') {
      throw new Error(`${PREFIX} historyFn must be a function`);
    }
    this.historyFn = opts.historyFn;
    // Like the server helper: duplicate now, connect in configure() (when lazyConnect left it in `wait`).
    this.idle = this.duplicate();
  }

  /** Connects the duplicated Redis connection if it waits for it, and waits (bounded) until it is ready. */
  configure(): Promise<void> {
    this.configured ??= (async () => {
      const client = this.idle ?? this.duplicate();
      this.idle = undefined;
      try {
        await waitForRedisReady(client, this.readyTimeout);
      } catch (error) {
        this.configured = undefined;
        await closeRedisClient(client);
        throw error;
      }
      this.client = client;
    })();
    return this.configured;
  }

  private duplicate(): TRedisClient {
    const client = asPublisher(this.connection.getClient().duplicate(), this.commandTimeout);
    // Not auto-pipelined (ioredis' enableAutoPipelining): it keeps one pipeline in flight per
    // connection, so during a stall the next calls would wait unsent behind it, past
    // redisCommandTimeout (whose clock starts only when a command is written).
    const limiter = new LogRateLimiter();
    client.on('error', (error: unknown) => {
      const text = errorText(error);
      const held = limiter.take(text);
      if (held === undefined) return; // the same error again within 10 s: not logged
      const more = held > 0 ? ` (${held} more since the last line)` : '';
      this.logger.warn(`Redis error: ${text}${more}`, logFields({ held }));
    });
    // ioredis may never settle what was in flight (it is not sent again): it no longer counts.
    client.on('close', () => {
      this.generation++;
      this.queuedChars = 0;
      this.queuedCalls = 0;
    });
    return client;
  }

  async toClient(opts: { clientId: string; event: string; data: unknown }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.CLIENT, requireTarget('clientId', opts?.clientId), opts);
  }

  async toUser(opts: { userId: string; event: string; data: unknown; exclude?: string[] }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.USER, requireTarget('userId', opts?.userId), opts);
  }

  /**
   * To a room that keeps history (per `historyFn`), the publish script assigns the position,
   * stores and publishes in one step, and the promise resolves to that position. To any other
   * room (no `historyFn`, or it answers null) the script positions the publication all the same
   * when the room's position in Redis holds a policy (the servers keep history for it: see
   * docs/recovery.md), else publishes it without one (resolves to undefined).
   */
  async toRoom(opts: {
    room: string;
    event: string;
    data: unknown;
    exclude?: string[];
  }): Promise<IStreamPosition | undefined> {
    const room = requireTarget('room', opts?.room);
    if (!isValidRoomName(room)) {
      throw new Error(
        `${PREFIX} room must be a valid room name (non-empty, at most 256 characters, not starting with "ws:")`,
      );
    }
    const policy = this.historyFn ? this.policyFor(room) : undefined;
    const event = requireEvent(opts.event);
    this.readyClient();
    const head = envelopeHead({
      serverId: WebSocketEmitter.SERVER_ID,
      type: WebSocketMessageTypes.ROOM,
      target: room,
      event,
      ...(opts.exclude && opts.exclude.length > 0 ? { exclude: opts.exclude } : {}),
    });
    const dataJson = serializeData(opts.data);
    this.assertFits(`${head}${dataJson === undefined ? '' : `,"data":${dataJson}`}}`, POSITION_TAIL_RESERVE);
    const outcome = await this.bounded(head.length + (dataJson?.length ?? 0), () =>
      this.historyStore.publish(
        room,
        policy,
        channelFor(WebSocketMessageTypes.ROOM, room),
        head,
        event,
        dataJson,
      ),
    );
    if (outcome.previousPolicy !== undefined) {
      this.warnMismatch(room, `its historyFn's policy differs from the one stored by another publisher`);
    } else if (this.historyFn && !policy && outcome.position) {
      this.warnMismatch(
        room,
        'its historyFn keeps no history for the room, but the servers do: positioned by theirs',
      );
    }
    return outcome.position;
  }

  private lastMismatchLog = 0;

  private warnMismatch(room: string, detail: string): void {
    const now = Date.now();
    if (now - this.lastMismatchLog < 5_000) return;
    this.lastMismatchLog = now;
    this.logger.warn(`${PREFIX} History policy disagreement in room ${JSON.stringify(room)}: ${detail}`);
  }

  /** A history room's retained publications and position; rejects with a `HistoryError`. */
  async history(opts: IHistoryOptions): Promise<IHistoryResult> {
    if (!this.historyFn) {
      throw new HistoryError(
        WebSocketErrorCodes.HISTORY_UNAVAILABLE,
        `${PREFIX} history() needs the historyFn option`,
      );
    }
    if (!this.client) throw new Error(`${PREFIX} not configured: call configure() first`);
    // Redis not connected: the store's error becomes a HistoryError HISTORY_UNAVAILABLE.
    return toHistoryResult(
      await queryHistory(this.historyStore, (room) => this.policyFor(room), opts, PREFIX),
    );
  }

  /** Forgets a room's history and position (the next publication starts a new epoch at offset 1). */
  async removeHistory(opts: { room: string }): Promise<void> {
    if (!isValidRoomName(opts?.room)) throw new Error(`${PREFIX} removeHistory needs a valid room name`);
    this.readyClient();
    await this.historyStore.remove(opts.room);
  }

  // ---------------------------------------------------------- server commands
  // Fire-and-forget over `ws:command`: each resolves once Redis took the command, to the number
  // of server instances it was handed to (the emitter has no subscriber to collect counts on).

  /** Closes a client, or every connection of a user, wherever connected (code 1000 or 3000-4999; default 1000). */
  async disconnect(opts: {
    clientId?: string;
    userId?: string;
    code?: number;
    reason?: string;
    /** `false`: close with 4008 (`WebSocketCloseCodes.NO_RECONNECT`), which the SDK does not reconnect after. */
    reconnect?: boolean;
  }): Promise<{ instances: number }> {
    const prefix = `${PREFIX} disconnect():`;
    const { target } = validateCommand(prefix, opts, false);
    const code = validateCloseCode(prefix, opts.code, opts.reconnect);
    const reason = String(opts.reason ?? 'Disconnected by the server').slice(0, 120);
    return this.command({ kind: 'disconnect', target, code, reason });
  }

  /** Makes a client, or every connection of a user, join rooms (room-name rules apply; no `validateRoomFn`). */
  async joinRooms(opts: {
    clientId?: string;
    userId?: string;
    rooms: string[];
  }): Promise<{ instances: number }> {
    const { target, rooms } = validateCommand(`${PREFIX} joinRooms():`, opts, true);
    return this.command({ kind: 'join', target, rooms });
  }

  /** Makes a client, or every connection of a user, leave rooms. */
  async leaveRooms(opts: {
    clientId?: string;
    userId?: string;
    rooms: string[];
  }): Promise<{ instances: number }> {
    const { target, rooms } = validateCommand(`${PREFIX} leaveRooms():`, opts, true);
    return this.command({ kind: 'leave', target, rooms });
  }

  private async command(command: TCommand): Promise<{ instances: number }> {
    const json = JSON.stringify({ from: WebSocketEmitter.SERVER_ID, command });
    this.assertFits(json);
    const client = this.readyClient();
    const instances = await this.bounded(json.length, () => client.publish(COMMAND_CHANNEL, this.seal(json)));
    return { instances };
  }

  async broadcast(opts: { event: string; data: unknown; exclude?: string[] }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.BROADCAST, undefined, opts);
  }

  private policyFor(room: string): IResolvedHistoryPolicy | undefined {
    return this.historyFn ? resolveHistoryPolicy(this.historyFn, room, PREFIX) : undefined;
  }

  /**
   * @internal The ready Redis connection (throws like a publish when there is none): the HTTP API
   * reads presence and the fleet registry on it.
   */
  readyConnection(): TRedisClient {
    return this.readyClient();
  }

  /** The connected client, or a clear error: nothing is queued while Redis is away. */
  private readyClient(): TRedisClient {
    const client = this.client;
    if (!client) throw new Error(`${PREFIX} not configured: call configure() first`);
    if (client.status !== 'ready') {
      throw new Error(`${PREFIX} Redis is not connected (status: ${client.status}); message not published`);
    }
    return client;
  }

  async shutdown(): Promise<void> {
    const clients = [this.client, this.idle].filter((c): c is TRedisClient => c !== undefined);
    this.client = undefined;
    this.idle = undefined;
    this.configured = undefined;
    await Promise.all(clients.map((client) => closeRedisClient(client)));
  }

  /**
   * Rejects (never throws synchronously) when the emitter is not configured,
   * Redis is not connected, or the arguments are wrong, so a caller that awaits
   * knows the message did not leave.
   */
  private async publish(
    type: TWebSocketMessageType,
    target: string | undefined,
    opts: { event: string; data: unknown; exclude?: string[] },
  ): Promise<void> {
    requireEvent(opts?.event);
    const client = this.readyClient();
    // `data` serialized apart and written last: the canonical form receivers forward without re-serializing.
    const envelope = encodeEnvelope(
      {
        serverId: WebSocketEmitter.SERVER_ID,
        type,
        ...(target !== undefined ? { target } : {}),
        event: opts.event,
        data: opts.data,
        ...(opts.exclude && opts.exclude.length > 0 ? { exclude: opts.exclude } : {}),
      },
      serializeData(opts.data),
    );
    this.assertFits(envelope);
    await this.bounded(envelope.length, () =>
      publishOn(this.pubSub, client, channelFor(type, target), this.seal(envelope)),
    );
  }

  /**
   * What waits for Redis now: calls sent and not answered yet, and their size in characters of
   * their envelopes (`maxPublishQueueBytes` is the limit).
   */
  publishQueue(): { messages: number; bytes: number } {
    return { messages: this.queuedCalls, bytes: this.queuedChars };
  }

  /**
   * Runs a call that waits for Redis, counted in `maxPublishQueueBytes`: rejects without sending
   * when the calls already waiting hold that much (one call alone always goes).
   */
  private async bounded<T>(size: number, run: () => Promise<T>): Promise<T> {
    if (this.queuedCalls > 0 && this.queuedChars + size > this.maxQueue) {
      throw new Error(
        `${PREFIX} maxPublishQueueBytes (${this.maxQueue}) of publications are waiting for Redis; message not published`,
      );
    }
    const generation = this.generation;
    this.queuedChars += size;
    this.queuedCalls++;
    try {
      return await run();
    } finally {
      if (generation === this.generation) {
        this.queuedChars -= size;
        this.queuedCalls--;
      }
    }
  }

  /** Rejects a message the servers would drop for its size (`reserve`: what Redis still adds). */
  private assertFits(json: string, reserve = 0): void {
    if (utf8LengthExceeds(json, this.maxEnvelopeBytes - reserve)) {
      throw new Error(
        `${PREFIX} message larger than maxEnvelopeBytes (${this.maxEnvelopeBytes} bytes); not published`,
      );
    }
  }

  private seal(json: string): string {
    return this.signer ? this.signer.sign(json) : json;
  }
}

function requireEvent(event: unknown): string {
  if (typeof event !== 'string' || event.length === 0) {
    throw new Error(`${PREFIX} event must be a non-empty string`);
  }
  return event;
}

function requireTarget(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`${PREFIX} ${name} must be a non-empty string`);
  }
  return value;
}
