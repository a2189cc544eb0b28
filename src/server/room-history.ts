import type { IHistoryConnections } from '../bus/cross-instance-bus.ts';
import { envelopeHead } from '../bus/envelope.ts';
import { POSITION_TAIL_RESERVE } from '../bus/guard.ts';
import { WebSocketChannels, WebSocketMessageTypes } from '../common/constants.ts';
import { logFields } from '../common/log.ts';
import type { AnyRecord, ILogger, IRedisSocketMessage } from '../common/types.ts';
import { positionedFrame, positionTail } from '../history/frames.ts';
import { MemoryHistoryStore } from '../history/memory-store.ts';
import { resolveHistoryPolicy } from '../history/policy.ts';
import {
  type IHistoryOptions,
  type IHistoryResult,
  queryHistory,
  toHistoryResult,
} from '../history/query.ts';
import { RedisHistoryStore, RedisNotReadyError, RedisStalledError } from '../history/redis-store.ts';
import type { IHistoryStore, IResolvedHistoryPolicy, THistoryFn } from '../history/types.ts';
import type { ServerCounters, THistoryMismatch } from '../metrics/counters.ts';
import { serializeData } from '../utils/json.ts';
import type { LocalDelivery } from './local-delivery.ts';

const PREFIX = '[WebSocketServerHelper]';

/** A history room's publication as delivered here, kept for clients whose recovery is being read. */
export interface ILivePublication {
  offset: number;
  epoch: string;
  event: string;
  data: unknown;
  /** The positioned frame every plain recipient gets. */
  frame: string;
  /** The position tail encrypted recipients get after their transformed frame. */
  tail: string;
}

export interface IRoomHistoryOptions<M extends object> {
  historyFn: THistoryFn;
  delivery: LocalDelivery<M>;
  serverId: string;
  logger: ILogger;
  /** Redis mode; omitted in single-instance mode (history in memory). */
  redis?: IHistoryConnections;
  counters?: ServerCounters;
  /** Metrics on: the envelope carries the publish time, for the cross-instance latency. */
  stampSentAt?: boolean;
}

/**
 * The server's side of history: which rooms keep it, assigning positions to `send()`s, and
 * delivering positioned publications. In single-instance mode the position is assigned in
 * memory and the publication delivered at once; over Redis the publish script assigns it and
 * every instance, this one included, delivers the publication when Pub/Sub brings it back.
 */
export class RoomHistory<M extends object = AnyRecord> {
  readonly store: IHistoryStore;
  private readonly memory?: MemoryHistoryStore;
  private readonly redisStore?: RedisHistoryStore;
  /** Set by the recovery: sees every positioned publication delivered here. */
  onLive?: (room: string, publication: ILivePublication) => void;
  private lastFailureLog = 0;
  private readonly lastMismatchLog = new Map<THistoryMismatch, number>();

  constructor(private readonly opts: IRoomHistoryOptions<M>) {
    const { redis } = opts;
    if (redis) {
      this.redisStore = new RedisHistoryStore(
        () => redis.publisher(),
        redis.pubSub,
        redis.signer,
        redis.commandTimeout,
      );
      this.store = this.redisStore;
    } else {
      this.memory = new MemoryHistoryStore();
      this.store = this.memory;
    }
  }

  /** The room's validated policy, or undefined when it keeps no history. Throws on a bad policy. */
  policyFor(room: string): IResolvedHistoryPolicy | undefined {
    return resolveHistoryPolicy(this.opts.historyFn, room, PREFIX);
  }

  /**
   * `send()` to a room that keeps history (`policy` from `policyFor`). Over Redis a publication
   * that cannot get a position (Redis down) is dropped and counted in the bus stats.
   */
  publish(
    room: string,
    policy: IResolvedHistoryPolicy,
    event: string,
    data: unknown,
    dataJson: string | undefined,
  ): void {
    if (this.opts.counters) this.opts.counters.historyPublished++;
    if (this.memory) {
      const { offset, epoch } = this.memory.append(room, policy, event, dataJson);
      this.live(room, deliverPositioned(this.opts.delivery, room, event, data, dataJson, offset, epoch));
      return;
    }
    const redis = this.opts.redis!;
    const head = envelopeHead({
      serverId: this.opts.serverId,
      type: WebSocketMessageTypes.ROOM,
      target: room,
      event,
      ...(this.opts.stampSentAt ? { sentAt: Date.now() } : {}),
    });
    // Counted (bus stats `oversize`) and logged by the bus; send() already refused a payload that alone is too large.
    const body = dataJson === undefined ? '' : `,"data":${dataJson}`;
    if (redis.tooLarge(`${head}${body}}`, 'history publication', POSITION_TAIL_RESERVE)) return;
    // Counted in maxPublishQueueBytes until Redis answers (dropped and counted past it).
    const size = head.length + body.length;
    const ticket = redis.admitPublication(size);
    if (ticket < 0) return;
    this.redisStore!.publish(room, policy, WebSocketChannels.forRoom({ room }), head, event, dataJson).then(
      (outcome) => {
        redis.releasePublication(size, ticket);
        if (outcome.previousPolicy !== undefined) {
          this.mismatch(room, 'policy', `another publisher stored ${describePolicy(outcome.previousPolicy)}`);
        }
      },
      (error: unknown) => {
        redis.releasePublication(size, ticket);
        const notReady = error instanceof RedisNotReadyError;
        const timedOut = error instanceof RedisStalledError || isCommandTimeout(error);
        redis.countDropped(notReady, timedOut);
        if (!notReady) this.logFailure(room, error);
      },
    );
  }

  /**
   * A room publication that came over Pub/Sub, checked against this instance's policy: one without
   * a position in a room kept here (a publisher that keeps no history for it), or with a position in
   * a room this instance keeps none for, means the fleet disagrees: counted and logged, then
   * delivered as it is.
   */
  checkReceived(room: string, message: IRedisSocketMessage, dataJson: string | undefined): void {
    const positioned = message.offset !== undefined;
    const from = message.serverId;
    let policy: IResolvedHistoryPolicy | undefined;
    try {
      policy = this.policyFor(room);
    } catch {
      return; // a bad policy is reported where it is used (send, join)
    }
    if (positioned === (policy !== undefined)) return;
    // Never recoverable: the room's offset moves past it, so a recovery across it says so.
    if (policy && this.redisStore) {
      // Names the publication alike on every instance that received it (see markHole).
      const content = `${from}\n${message.sentAt ?? ''}\n${message.event}\n${dataJson ?? JSON.stringify(message.data)}`;
      this.markHole(room, policy, content);
    }
    this.mismatch(
      room,
      positioned ? 'positioned' : 'unpositioned',
      positioned
        ? `publication with a position from ${from}, but historyFn keeps no history for the room here`
        : `publication without a position from ${from}, but historyFn keeps history for the room here: it cannot be recovered`,
    );
  }

  /**
   * One hole per publication however many instances received it: the mark is the content's hash and
   * how many times this content came in the last minute, which every subscriber counts alike (Redis
   * hands a channel's messages to each in the same order). An instance that missed one makes an
   * extra hole, which only errs on the safe side.
   */
  private markHole(room: string, policy: IResolvedHistoryPolicy, content: string): void {
    const hash = Bun.hash(`${room}\n${content}`).toString(36);
    const now = Date.now();
    if (this.holesSeen.size >= 1_000) {
      for (const [key, seen] of this.holesSeen) if (now - seen.at > 60_000) this.holesSeen.delete(key);
      if (this.holesSeen.size >= 1_000) this.holesSeen.clear(); // a flood: extra holes, never fewer
    }
    const seen = this.holesSeen.get(hash);
    const count = seen && now - seen.at <= 60_000 ? seen.count + 1 : 1;
    this.holesSeen.set(hash, { count, at: now });
    this.redisStore!.markHole(room, policy, `${hash}.${count}`).catch((error: unknown) => {
      if (!(error instanceof RedisNotReadyError)) this.logFailure(room, error);
    });
  }

  /** Content hashes of unpositioned publications received lately (bounded; see markHole). */
  private readonly holesSeen = new Map<string, { count: number; at: number }>();

  private mismatch(room: string, kind: THistoryMismatch, detail: string): void {
    this.opts.counters?.countHistoryMismatch(kind);
    const now = Date.now();
    // Counted always, logged at most every 5 s for each kind.
    if (now - (this.lastMismatchLog.get(kind) ?? 0) < 5_000) return;
    this.lastMismatchLog.set(kind, now);
    this.opts.logger.warn(
      `History policy disagreement (${kind}): ${detail}; every instance and emitter must use the same historyFn (see docs/recovery.md)`,
      logFields({ room }),
    );
  }

  /** A history room's retained publications and position (the helper's `history()`). */
  async history(opts: IHistoryOptions): Promise<IHistoryResult> {
    return toHistoryResult(await queryHistory(this.store, (room) => this.policyFor(room), opts, PREFIX));
  }

  stop(): void {
    this.memory?.stop();
  }

  /** Feeds a positioned publication delivered here to the recoveries in progress. */
  live(room: string, publication: ILivePublication): void {
    this.onLive?.(room, publication);
  }

  private logFailure(room: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < 5_000) return; // a failing Redis must not flood the log
    this.lastFailureLog = now;
    this.opts.logger.warn(
      'History publish failed; message dropped',
      error instanceof Error ? error.message : error,
      logFields({ room }),
    );
  }
}

/**
 * A positioned publication that came over Pub/Sub (from any instance or an emitter; assigned by
 * the publish script): delivered here, and fed to the recoveries when this instance keeps history.
 * An instance without `historyFn` delivers it the same way.
 */
export function deliverPositionedMessage<M extends object>(
  delivery: LocalDelivery<M>,
  message: IRedisSocketMessage,
  history?: RoomHistory<M>,
  /** The payload as received, when it can be forwarded as is. */
  dataJson?: string,
): void {
  const { target, event, data, offset, epoch, exclude } = message;
  const room = target!;
  const json = dataJson ?? serializeData(data);
  const live = deliverPositioned(delivery, room, event, data, json, offset!, epoch!, exclude);
  history?.live(room, live);
}

/**
 * Delivers a positioned publication to the room's members here (the frame built once) and
 * returns it.
 */
export function deliverPositioned<M extends object>(
  delivery: LocalDelivery<M>,
  room: string,
  event: string,
  data: unknown,
  dataJson: string | undefined,
  offset: number,
  epoch: string,
  exclude?: readonly string[],
): ILivePublication {
  const tail = positionTail(room, offset, epoch);
  const frame = positionedFrame(event, dataJson, tail);
  delivery.toRoom(room, event, data, exclude, frame, tail);
  return { offset, epoch, event, data, frame, tail };
}

/** ioredis' `commandTimeout` rejection (see redis/command-timeout.ts). */
function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

/** `<metaTtl>:<ttl>:<size>` as the log shows it. */
function describePolicy(stored: string): string {
  const [metaTtl, ttl, size] = stored.split(':');
  return `{ size: ${size}, ttl: ${ttl}, metaTtl: ${metaTtl} }`;
}
