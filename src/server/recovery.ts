import type { IRoomChannels } from '../bus/cross-instance-bus.ts';
import { WebSocketErrorCodes, WebSocketEvents, WebSocketLimits } from '../common/constants.ts';
import { logFields } from '../common/log.ts';
import type { AnyRecord, ILogger, IWebSocketClient } from '../common/types.ts';
import { positionedFrame, positionTail } from '../history/frames.ts';
import type {
  IHistoryPage,
  IHistoryQuery,
  IHistoryStore,
  IResolvedHistoryPolicy,
  IStreamPosition,
} from '../history/types.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import { parseJsonSafely } from '../utils/json.ts';
import type { ClientRegistry } from './client-registry.ts';
import { type LocalDelivery, replyError, type TSystemReply } from './local-delivery.ts';
import type { ILivePublication, RoomHistory } from './room-history.ts';

type Client<M extends object> = IWebSocketClient<M>;

export interface IRoomRecoveryOptions<M extends object> {
  registry: ClientRegistry<M>;
  delivery: LocalDelivery<M>;
  history: RoomHistory<M>;
  logger: ILogger;
  reply: TSystemReply<M>;
  /** Redis mode: resolves once Pub/Sub has caught up with everything published before the call. */
  barrier?: (rooms: readonly string[]) => Promise<void>;
  /**
   * `rooms` subscription mode: a room's channel is held and subscribed before its history is
   * read, so the barrier covers every publication the read did not.
   */
  channels?: IRoomChannels;
  counters?: ServerCounters;
}

/** Live publications of one room held for one client while its history is read. */
interface ICapture<M extends object> {
  room: string;
  client: Client<M>;
  live: ILivePublication[];
  /**
   * Set when more than `RECOVERY_BUFFER_LIMIT` arrived, or the client's total held would pass
   * `RECOVERY_BUFFER_LIMIT_PER_CLIENT`: the held ones were dropped.
   */
  overflowed: boolean;
  /** The latest publication seen (kept after an overflow: the client continues after it). */
  last?: ILivePublication;
}

interface IPlan {
  room: string;
  policy: IResolvedHistoryPolicy;
  since?: IStreamPosition;
}

/** The `join` reply's data; `positions` / `recovered` are absent when empty. */
export interface IJoinReply {
  rooms: string[];
  positions?: Record<string, IStreamPosition>;
  recovered?: Record<string, boolean>;
}

/**
 * `join` for rooms that keep history (see docs/recovery.md). While a client's position is read,
 * it is kept off the room's native fan-out and the room's live publications are held for it;
 * then, in one synchronous step: the reply, the missed publications, the held ones past the
 * read position, and the native subscribe. Over Redis, a PING on the subscriber connection
 * before that step makes sure no publication the read already covered is still in flight.
 */
export class RoomRecovery<M extends object = AnyRecord> {
  private readonly captures = new Map<string, Set<ICapture<M>>>();
  /** Rooms of each client being recovered right now (bounded per client). */
  private readonly inFlight = new WeakMap<Client<M>, number>();
  /** Live publications held for each client across its recovering rooms (bounded per client). */
  private readonly heldByClient = new WeakMap<Client<M>, number>();
  /** Positioned frames of the missed publications of a page, built on first use. */
  private readonly frames = new WeakMap<IHistoryPage, Array<{ frame: string; tail: string }>>();
  private readonly reads: BatchedReads;

  constructor(private readonly opts: IRoomRecoveryOptions<M>) {
    opts.history.onLive = (room, publication) => this.hold(room, publication);
    this.reads = new BatchedReads(opts.history.store);
  }

  /** Rooms with a recovery in progress (of any client), for stats and leak tests. */
  get pendingRooms(): number {
    return this.captures.size;
  }

  /**
   * Joins `rooms` (already granted) with recovery for those keeping history. Returns undefined
   * when none keeps history: the caller joins them as before.
   */
  join(
    client: Client<M>,
    rooms: string[],
    since: Map<string, IStreamPosition> | undefined,
    id: string | undefined,
  ): Promise<void> | undefined {
    const plans: IPlan[] = [];
    for (const room of rooms) {
      const policy = room === client.id ? undefined : this.policyFor(room);
      if (policy) plans.push({ room, policy, since: since?.get(room) });
    }
    if (plans.length === 0) return undefined;
    const busy = this.inFlight.get(client) ?? 0;
    if (busy + plans.length > WebSocketLimits.MAX_RECOVERING_ROOMS) {
      const text = `at most ${WebSocketLimits.MAX_RECOVERING_ROOMS} history rooms may be joined at once; retry when the pending joins are answered`;
      replyError(this.opts.reply, client, WebSocketErrorCodes.TOO_MANY_ROOMS, text, id);
      return Promise.resolve();
    }
    return this.recover(client, rooms, plans, since, id, busy);
  }

  private async recover(
    client: Client<M>,
    rooms: string[],
    plans: IPlan[],
    since: Map<string, IStreamPosition> | undefined,
    id: string | undefined,
    busy: number,
  ): Promise<void> {
    const { registry, channels } = this.opts;
    this.inFlight.set(client, busy + plans.length);
    // Held before the leave below, so a gap repair never drops the room's subscription.
    if (channels) for (const room of rooms) channels.hold(room);
    // A room the client is already in (a gap repair): off native fan-out until the flush. Only
    // suspended: to presence (and so to the room's other members) the client never left.
    for (const plan of plans) registry.suspend(client, plan.room);
    const captures = plans.map((plan) => this.capture(plan.room, client));
    try {
      const pages = await this.readAll(plans, channels?.whenSubscribed(rooms));
      if (registry.get(client.id) !== client) return; // disconnected meanwhile: nothing to send
      this.flush(client, rooms, plans, pages, captures, since, id);
    } finally {
      // After the flush joined the rooms (their members hold the channels from now on).
      if (channels) for (const room of rooms) channels.release(room);
      for (const capture of captures) this.release(capture);
      const left = (this.inFlight.get(client) ?? plans.length) - plans.length;
      if (left > 0) this.inFlight.set(client, left);
      else this.inFlight.delete(client);
    }
  }

  /** Every plan's page, or undefined where it could not be read (or the barrier failed), within a bound. */
  private async readAll(
    plans: IPlan[],
    subscribed: Promise<void> | undefined,
  ): Promise<Array<IHistoryPage | undefined>> {
    const { barrier, logger } = this.opts;
    const work = (async () => {
      // Live publications must be arriving before the read, or those between it and the
      // SUBSCRIBE would be in neither the page nor the capture.
      if (subscribed) await subscribed;
      const pages = await Promise.all(
        plans.map((plan) =>
          this.reads
            .read(plan.room, plan.policy, {
              since: plan.since,
              // All missed publications (at most `size`: anything further back is not retained).
              limit: plan.since ? plan.policy.size : 0,
              reverse: false,
            })
            .catch((error: unknown) => {
              logger.warn(
                `History of room ${JSON.stringify(plan.room)} could not be read`,
                describe(error),
                logFields({ room: plan.room }),
              );
              return undefined;
            }),
        ),
      );
      if (barrier && pages.some((page) => page !== undefined)) {
        try {
          await barrier(plans.map((plan) => plan.room));
        } catch (error) {
          logger.warn('Pub/Sub barrier failed; recovery answered as not recovered', describe(error));
          return plans.map(() => undefined);
        }
      }
      return pages;
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined[]>((resolve) => {
      timer = setTimeout(() => resolve(plans.map(() => undefined)), WebSocketLimits.RECOVERY_TIMEOUT);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The synchronous step: reply, missed publications, held ones, native subscribe. */
  private flush(
    client: Client<M>,
    rooms: string[],
    plans: IPlan[],
    pages: Array<IHistoryPage | undefined>,
    captures: ICapture<M>[],
    since: Map<string, IStreamPosition> | undefined,
    id: string | undefined,
  ): void {
    const positions: Record<string, IStreamPosition> = {};
    const recovered: Record<string, boolean> = {};
    const sends: Array<() => void> = [];
    plans.forEach((plan, i) => {
      const page = pages[i];
      const capture = captures[i]!;
      if (capture.overflowed) {
        // Held publications were dropped: not recovered; live from the last one seen.
        const last = capture.last!;
        const readIsLater = page !== undefined && page.epoch === last.epoch && page.offset > last.offset;
        positions[plan.room] = readIsLater
          ? { offset: page.offset, epoch: page.epoch }
          : { offset: last.offset, epoch: last.epoch };
        if (plan.since) {
          recovered[plan.room] = false;
          this.opts.counters?.countRecovery('overflow');
        }
        return;
      }
      let live = capture.live;
      if (page) {
        positions[plan.room] = { offset: page.offset, epoch: page.epoch };
        if (plan.since) {
          recovered[plan.room] = page.retained;
          this.opts.counters?.countRecovery(page.retained ? 'recovered' : 'not_retained');
        }
        if (plan.since && page.retained) {
          page.publications.forEach((_, index) => {
            sends.push(() => this.sendStored(client, plan.room, page, index));
          });
        }
        // What the read already covered was either missed (sent above) or before the client's position.
        live = live.filter((p) => p.epoch !== page.epoch || p.offset > page.offset);
      } else if (plan.since) {
        recovered[plan.room] = false;
        this.opts.counters?.countRecovery('unavailable');
      }
      for (const publication of live) {
        sends.push(() =>
          this.opts.delivery.toRecovering(
            client,
            publication.frame,
            publication.event,
            () => publication.data,
            publication.tail,
          ),
        );
      }
    });
    const reply: IJoinReply = notRecoveredReply(rooms, since, plans);
    if (Object.keys(positions).length > 0) reply.positions = positions;
    if (Object.keys(recovered).length > 0) reply.recovered = { ...reply.recovered, ...recovered };
    this.opts.reply(client, WebSocketEvents.JOIN, reply, id);
    for (const send of sends) send();
    for (const room of rooms) this.opts.registry.join(client, room);
  }

  /** A missed publication; its frame is built once per page, shared by every client the page serves. */
  private sendStored(client: Client<M>, room: string, page: IHistoryPage, index: number): void {
    let frames = this.frames.get(page);
    if (!frames) {
      frames = new Array(page.publications.length);
      this.frames.set(page, frames);
    }
    const { offset, event, dataJson } = page.publications[index]!;
    let built = frames[index];
    if (!built) {
      const tail = positionTail(room, offset, page.epoch);
      built = { frame: positionedFrame(event, dataJson, tail), tail };
      frames[index] = built;
    }
    const data = () => (dataJson === undefined ? undefined : parseJsonSafely(dataJson));
    this.opts.delivery.toRecovering(client, built.frame, event, data, built.tail);
  }

  private hold(room: string, publication: ILivePublication): void {
    const captures = this.captures.get(room);
    if (!captures) return;
    for (const capture of captures) {
      // Back in the room already (another join of the same client flushed first): it got this natively.
      if (capture.client.rooms.has(room)) continue;
      capture.last = publication;
      if (capture.overflowed) continue;
      const clientHeld = this.heldByClient.get(capture.client) ?? 0;
      if (
        capture.live.length >= WebSocketLimits.RECOVERY_BUFFER_LIMIT ||
        clientHeld >= WebSocketLimits.RECOVERY_BUFFER_LIMIT_PER_CLIENT
      ) {
        capture.overflowed = true;
        this.heldByClient.set(capture.client, clientHeld - capture.live.length);
        capture.live = [];
      } else {
        capture.live.push(publication);
        this.heldByClient.set(capture.client, clientHeld + 1);
      }
    }
  }

  private capture(room: string, client: Client<M>): ICapture<M> {
    const capture: ICapture<M> = { room, client, live: [], overflowed: false };
    let set = this.captures.get(room);
    if (!set) {
      set = new Set();
      this.captures.set(room, set);
    }
    set.add(capture);
    return capture;
  }

  private release(capture: ICapture<M>): void {
    const clientHeld = this.heldByClient.get(capture.client);
    if (clientHeld !== undefined) {
      const left = clientHeld - capture.live.length;
      if (left > 0) this.heldByClient.set(capture.client, left);
      else this.heldByClient.delete(capture.client);
    }
    const set = this.captures.get(capture.room);
    if (!set) return;
    set.delete(capture);
    if (set.size === 0) this.captures.delete(capture.room);
  }

  /** A throwing `historyFn` is the application's bug: logged, and the room is joined without history. */
  private policyFor(room: string): IResolvedHistoryPolicy | undefined {
    try {
      return this.opts.history.policyFor(room);
    } catch (error) {
      this.opts.logger.error(
        `historyFn failed for room ${JSON.stringify(room)}; joined without history`,
        logFields({ room, error }),
      );
      return undefined;
    }
  }
}

/**
 * The reply for `rooms` with `recovered: false` for each room named in `since` that keeps no
 * history (not in `historic`); `recovered` absent when there is none.
 */
export function notRecoveredReply(
  rooms: string[],
  since: Map<string, IStreamPosition> | undefined,
  historic: ReadonlyArray<{ room: string }> = [],
): IJoinReply {
  const reply: IJoinReply = { rooms };
  if (!since || since.size === 0) return reply;
  const recovered: Record<string, boolean> = {};
  let any = false;
  for (const room of rooms) {
    if (since.has(room) && !historic.some((plan) => plan.room === room)) {
      recovered[room] = false;
      any = true;
    }
  }
  if (any) reply.recovered = recovered;
  return reply;
}

/**
 * Reads of the recoveries that start in the same turn of the event loop are sent together at its
 * end, and identical ones (same room, policy and `since`: a crowd reconnecting after an instance
 * died) share one read and its frames. A read is only shared before it is sent, so every sharer's
 * capture of live publications started before the read ran.
 */
class BatchedReads {
  private pending?: Map<string, IBatchedRead>;

  constructor(private readonly store: IHistoryStore) {}

  read(room: string, policy: IResolvedHistoryPolicy, query: IHistoryQuery): Promise<IHistoryPage> {
    if (!this.pending) {
      this.pending = new Map();
      setImmediate(() => this.flush());
    }
    const { since } = query;
    const key = [
      room,
      since?.offset ?? -1,
      since?.epoch ?? '',
      query.limit,
      policy.size,
      policy.ttl,
      policy.metaTtl,
    ].join('\u0000');
    let entry = this.pending.get(key);
    if (!entry) {
      let settle!: Pick<IBatchedRead, 'resolve' | 'reject'>;
      const promise = new Promise<IHistoryPage>((resolve, reject) => {
        settle = { resolve, reject };
      });
      entry = { room, policy, query, promise, ...settle };
      this.pending.set(key, entry);
    }
    return entry.promise;
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = undefined;
    for (const { room, policy, query, resolve, reject } of batch?.values() ?? []) {
      // A store may throw synchronously (Redis not connected): that rejects this read only.
      new Promise<IHistoryPage>((done) => done(this.store.read(room, policy, query))).then(resolve, reject);
    }
  }
}

interface IBatchedRead {
  room: string;
  policy: IResolvedHistoryPolicy;
  query: IHistoryQuery;
  promise: Promise<IHistoryPage>;
  resolve: (page: IHistoryPage) => void;
  reject: (error: unknown) => void;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
