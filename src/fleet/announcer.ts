import { errorText, LogRateLimiter, logFields } from '../common/log.ts';
import type { ILogger } from '../common/types.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { FLEET_INDEX_KEY, fleetInstanceKey } from './keys.ts';
import type { IResolvedFleetOptions } from './options.ts';
import { largestRooms } from './top-rooms.ts';
import type { IFleetInstance, IFleetRates, IFleetRoom } from './types.ts';

/** The running totals the rates are computed from (the server's `ServerCounters` has them). */
export interface IFleetCounters {
  readonly authenticated: number;
  readonly inboundFrames: number;
  readonly nativePublishes: number;
  readonly socketWrites: number;
  readonly connectionsOpened: number;
}

/** What the announcer reads from its instance, once per beat: nothing is pushed to it. */
export interface IFleetSource {
  serverId: string;
  identifier: string;
  /** The Redis connection to write on (the bus's publisher); undefined while there is none. */
  client(): TRedisClient | undefined;
  sizes(): { clients: number; users: number; rooms: number };
  counters: IFleetCounters;
  /** Every named room with local members (the client registry's). */
  roomNames(): Iterable<string>;
  roomSize(room: string): number;
  draining(): boolean;
  logger: ILogger;
}

type TTotals = Pick<
  IFleetCounters,
  'inboundFrames' | 'nativePublishes' | 'socketWrites' | 'connectionsOpened'
>;

/**
 * Announces one instance in Redis: every `interval` its record (`IFleetInstance`) is written
 * with a TTL and its expiry into the fleet's sorted set, in one MULTI on one slot. A dead
 * instance's record runs out within `ttl`; readers (and every beat) prune the sorted set.
 * Costs one timer and one round trip per interval, and nothing per message or connection:
 * counts are read from what the server keeps anyway.
 */
export class FleetAnnouncer {
  private timer?: ReturnType<typeof setInterval>;
  private startedAt = 0;
  private last?: { at: number; totals: TTotals };
  private beating?: Promise<void>;
  private readonly logLimiter = new LogRateLimiter();

  constructor(
    private readonly source: IFleetSource,
    private readonly opts: IResolvedFleetOptions,
  ) {}

  /** Writes the first record (errors logged, never thrown) and starts the interval. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.startedAt = Date.now();
    this.last = { at: this.startedAt, totals: { ...totals(this.source.counters) } };
    this.timer = setInterval(() => {
      void this.beat();
    }, this.opts.interval);
    this.timer.unref?.();
    await this.beat();
  }

  /** The record as it would be written now (rates since the last beat). */
  snapshot(now = Date.now()): IFleetInstance {
    const { source } = this;
    const sizes = source.sizes();
    const current = totals(source.counters);
    const since = this.last ?? { at: this.startedAt || now, totals: current };
    const seconds = Math.max((now - since.at) / 1000, 0.001);
    const rate = (key: keyof TTotals) => round((current[key] - since.totals[key]) / seconds);
    const rates: IFleetRates = {
      inboundFrames: rate('inboundFrames'),
      publishes: rate('nativePublishes'),
      socketWrites: rate('socketWrites'),
      connectionsOpened: rate('connectionsOpened'),
    };
    return {
      id: source.serverId,
      identifier: source.identifier,
      version: this.opts.version,
      startedAt: this.startedAt || now,
      updatedAt: now,
      expiresAt: now + this.opts.ttl,
      connections: sizes.clients,
      authenticated: source.counters.authenticated,
      users: sizes.users,
      rooms: sizes.rooms,
      rates,
      topRooms: this.topRooms(),
      draining: source.draining(),
    };
  }

  private topRooms(): IFleetRoom[] {
    const { source } = this;
    const n = this.opts.topRooms;
    if (n === 0) return [];
    return largestRooms(
      (function* () {
        for (const room of source.roomNames()) yield { room, members: source.roomSize(room) };
      })(),
      n,
    );
  }

  /** One write; a beat still in flight (Redis slow) is not overlapped. */
  beat(): Promise<void> {
    this.beating ??= this.write().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async write(): Promise<void> {
    const client = this.source.client();
    if (client?.status !== 'ready') return;
    const now = Date.now();
    const record = this.snapshot(now);
    this.last = { at: now, totals: totals(this.source.counters) };
    try {
      await client
        .multi()
        .set(fleetInstanceKey(record.id), JSON.stringify(record), 'PX', this.opts.ttl)
        .zadd(FLEET_INDEX_KEY, record.expiresAt, record.id)
        .zremrangebyscore(FLEET_INDEX_KEY, '-inf', now)
        .exec();
    } catch (error) {
      const text = errorText(error);
      const held = this.logLimiter.take('write');
      if (held !== undefined) {
        this.source.logger.warn(
          `fleet registry: the instance record was not written: ${text}`,
          logFields({ held }),
        );
      }
    }
  }

  /** Stops the interval and removes the record (a clean shutdown leaves the listing at once). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    const client = this.source.client();
    if (client?.status !== 'ready') return;
    const id = this.source.serverId;
    await client
      .multi()
      .del(fleetInstanceKey(id))
      .zrem(FLEET_INDEX_KEY, id)
      .exec()
      .catch(() => {});
  }
}

function totals(counters: IFleetCounters): TTotals {
  return {
    inboundFrames: counters.inboundFrames,
    nativePublishes: counters.nativePublishes,
    socketWrites: counters.socketWrites,
    connectionsOpened: counters.connectionsOpened,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
