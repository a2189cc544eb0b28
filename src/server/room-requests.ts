import type { IRoomChannels } from '../bus/cross-instance-bus.ts';
import { WebSocketErrorCodes, WebSocketEvents, WebSocketLimits } from '../common/constants.ts';
import { clientFields } from '../common/log.ts';
import { sanitizeRoomList } from '../common/room-names.ts';
import type { AnyRecord, ILogger, IWebSocketClient, TWebSocketValidateRoomFn } from '../common/types.ts';
import { readSinceMap } from '../history/policy.ts';
import type { IStreamPosition } from '../history/types.ts';
import { isPlainObject } from '../utils/json.ts';
import { settleSoon, type TCallbackOutcome } from '../utils/safe-call.ts';
import type { ClientRegistry } from './client-registry.ts';
import type { InboundLimiter } from './inbound-limits.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import { notRecoveredReply, type RoomRecovery } from './recovery.ts';

export interface IRoomRequestOptions<M extends object> {
  registry: ClientRegistry<M>;
  logger: ILogger;
  validateRoomFn?: TWebSocketValidateRoomFn;
  reply: TSystemReply<M>;
  limiter: InboundLimiter;
  /** Present with `historyFn`: joins of history rooms go through it. */
  recovery?: RoomRecovery<M>;
  /** `rooms` subscription mode: the reply waits until the rooms' channels are subscribed. */
  channels?: IRoomChannels;
}

/**
 * A cap on rooms shared by several connections (the component's per-address and per-user caps).
 * `reserve` is asked before a join adds `added` rooms to the client: a refusal's error code and
 * message, or undefined after counting them; `sync` recounts the client's rooms after its
 * request was applied.
 */
export interface IRoomQuota<M extends object = AnyRecord> {
  reserve(client: IWebSocketClient<M>, added: number): { code: string; message: string } | undefined;
  sync(client: IWebSocketClient<M>): void;
}

/**
 * Client-initiated `join` / `leave`. Names are sanitized before the application
 * sees them, joins need `validateRoomFn` (deny all without it), and every
 * request is answered with the rooms it actually changed.
 */
export class RoomRequests<M extends object = AnyRecord> {
  /**
   * A client's room requests not applied yet (a validation or a subscription pending): later
   * ones are applied after them, so join / leave / join of one room take effect and are answered
   * in the order received. Validations still run concurrently; only their effects are ordered.
   * Absent while everything answers synchronously (the common case costs nothing).
   */
  private readonly unapplied = new WeakMap<IWebSocketClient<M>, Promise<void>>();

  /** Set by the component when it caps rooms across connections; absent: no work for it. */
  quota?: IRoomQuota<M>;
  /** Set with sealed rooms (`roomKeys`): a room it refuses for the client is not granted. */
  admits?: (client: IWebSocketClient<M>, room: string) => boolean;

  constructor(private readonly opts: IRoomRequestOptions<M>) {}

  join(client: IWebSocketClient<M>, data: unknown, id?: string): Promise<void> | undefined {
    const requested = this.readRooms(client, data, WebSocketEvents.JOIN, id);
    if (!requested) return undefined;
    const since = readSinceMap((data as { since?: unknown }).since);
    const { validateRoomFn, reply, limiter } = this.opts;
    if (since === null) {
      const text = 'join since expects { [room]: { offset: integer >= 0, epoch: string (1..64 chars) } }';
      replyError(reply, client, WebSocketErrorCodes.INVALID_REQUEST, text, id);
      return undefined;
    }
    if (!validateRoomFn || requested.length === 0) {
      const none: [] = [];
      return this.inOrder(client, id, false, none, (nothing) =>
        this.grant(client, requested, nothing, since, id),
      );
    }
    if (!limiter.mayStartRequest(client, id)) return undefined;
    const outcome = settleSoon(validateRoomFn, {
      clientId: client.id,
      userId: client.userId,
      rooms: requested,
    });
    return this.inOrder(client, id, true, outcome, (settled) =>
      this.grant(client, requested, settled, since, id),
    );
  }

  leave(client: IWebSocketClient<M>, data: unknown, id?: string): Promise<void> | undefined {
    const requested = this.readRooms(client, data, WebSocketEvents.LEAVE, id);
    if (!requested) return undefined;
    return this.inOrder(client, id, false, undefined, () => this.leaveNow(client, requested, id));
  }

  /**
   * Applies a request once `ready` (its validation) has settled and the client's earlier room
   * requests were applied: at once when nothing is pending. A request that waits counts against
   * `limits.maxPendingRequests` until applied (`admitted`: the limit was checked already, before
   * its validation started); one refused is answered `TOO_MANY_PENDING` with `id`.
   */
  private inOrder<T>(
    client: IWebSocketClient<M>,
    id: string | undefined,
    admitted: boolean,
    ready: T | Promise<T>,
    apply: (value: T) => Promise<void> | undefined,
  ): Promise<void> | undefined {
    const before = this.unapplied.get(client);
    if (!before && !(ready instanceof Promise)) return this.track(client, apply(ready));
    if (!admitted && !this.opts.limiter.mayStartRequest(client, id)) return undefined;
    client.pendingRequests = (client.pendingRequests ?? 0) + 1;
    const running = Promise.all([before, ready]).then(([, value]) => {
      client.pendingRequests = (client.pendingRequests ?? 1) - 1;
      if (this.opts.registry.get(client.id) !== client) return undefined; // gone meanwhile
      return apply(value);
    });
    return this.track(client, running);
  }

  /** Records `running` as the client's latest unapplied request (nothing when it is done already). */
  private track(client: IWebSocketClient<M>, running: Promise<void> | undefined): Promise<void> | undefined {
    if (!running) return undefined;
    const settled = running.catch(() => {}); // the caller logs the failure; the order goes on
    this.unapplied.set(client, settled);
    void settled.then(() => {
      if (this.unapplied.get(client) === settled) this.unapplied.delete(client);
    });
    return running;
  }

  /** Applies what `validateRoomFn` allowed (nothing without it) and answers. */
  private grant(
    client: IWebSocketClient<M>,
    requested: string[],
    outcome: TCallbackOutcome<unknown> | [],
    since: Map<string, IStreamPosition> | undefined,
    id?: string,
  ): Promise<void> | undefined {
    const { registry, logger, reply, limiter, recovery } = this.opts;
    let allowed: string[] = [];
    if (!Array.isArray(outcome)) {
      if (outcome.ok && Array.isArray(outcome.value)) {
        // Only names that were asked for (and passed sanitizing) can be granted.
        const asked = new Set(requested);
        allowed = (outcome.value as unknown[]).filter((room): room is string => asked.has(room as string));
      } else if (!outcome.ok) {
        logger.error(
          `validateRoomFn threw for client ${client.id}; join denied`,
          clientFields(client, { error: outcome.error }),
        );
      }
    }
    const { admits } = this;
    if (admits) allowed = allowed.filter((room) => admits(client, room));
    if (this.wouldExceedRooms(client, allowed)) {
      const text = `A client may be in at most ${limiter.limits.maxRoomsPerClient} rooms; nothing joined`;
      limiter.refuseRequest(client, WebSocketErrorCodes.ROOM_LIMIT, text, id);
      return undefined;
    }
    const { quota } = this;
    if (quota) {
      let added = 0;
      for (const room of allowed) if (room !== client.id && !client.rooms.has(room)) added++;
      const refusal = added > 0 ? quota.reserve(client, added) : undefined;
      if (refusal) {
        limiter.refuseRequest(client, refusal.code, refusal.message, id);
        return undefined;
      }
    }
    const recovering = recovery?.join(client, allowed, since, id);
    if (recovering) return quota ? recovering.finally(() => quota.sync(client)) : recovering;
    for (const room of allowed) registry.join(client, room);
    quota?.sync(client);
    // Anything published after the reply must reach the client, also from other instances:
    // where this instance was not subscribed to a room yet, answer once Redis acknowledged it.
    const subscribed = this.opts.channels?.whenSubscribed(allowed);
    const answer = () => reply(client, WebSocketEvents.JOIN, notRecoveredReply(allowed, since), id);
    if (!subscribed) {
      answer();
      return undefined;
    }
    return subscribed.then(() => {
      if (registry.get(client.id) === client) answer();
    });
  }

  private leaveNow(client: IWebSocketClient<M>, requested: string[], id?: string): undefined {
    // A client may not leave its own id room: direct delivery across instances relies on it.
    const left = requested.filter((room) => room !== client.id && this.opts.registry.leave(client, room));
    this.quota?.sync(client);
    this.opts.reply(client, WebSocketEvents.LEAVE, { rooms: left }, id);
    return undefined;
  }

  /** True when joining `rooms` would take the client past `maxRoomsPerClient` (its id room not counted). */
  private wouldExceedRooms(client: IWebSocketClient<M>, rooms: readonly string[]): boolean {
    const max = this.opts.limiter.limits.maxRoomsPerClient;
    if (max === Number.POSITIVE_INFINITY) return false;
    let count = client.rooms.size - (client.rooms.has(client.id) ? 1 : 0);
    for (const room of rooms) if (room !== client.id && !client.rooms.has(room)) count++;
    return count > max;
  }

  /** `{ rooms: string[] }` → sanitized names, or undefined after answering with an error. */
  private readRooms(
    client: IWebSocketClient<M>,
    data: unknown,
    event: string,
    id: string | undefined,
  ): string[] | undefined {
    const refuse = (code: string, message: string): undefined => {
      replyError(this.opts.reply, client, code, message, id);
      return undefined;
    };
    const rooms = isPlainObject(data) ? data.rooms : undefined;
    if (!Array.isArray(rooms)) {
      return refuse(WebSocketErrorCodes.INVALID_REQUEST, `${event} expects { rooms: string[] }`);
    }
    if (rooms.length > WebSocketLimits.MAX_ROOMS_PER_REQUEST) {
      return refuse(
        WebSocketErrorCodes.TOO_MANY_ROOMS,
        `${event} accepts at most ${WebSocketLimits.MAX_ROOMS_PER_REQUEST} rooms per request`,
      );
    }
    return sanitizeRoomList(rooms);
  }
}
