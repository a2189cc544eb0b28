import { WebSocketErrorCodes, WebSocketEvents } from '../common/constants.ts';
import { isValidRoomName, PRESENCE_EVENTS_PREFIX } from '../common/room-names.ts';
import type { AnyRecord, ILogger, IWebSocketClient } from '../common/types.ts';
import {
  type IPresenceEvent,
  type IPresenceMember,
  type IPresenceStore,
  presenceStats,
  type TPresenceFn,
  type TPresenceInfoFn,
} from '../presence/types.ts';
import { isPlainObject } from '../utils/json.ts';
import type { ClientRegistry, TMembershipChange } from './client-registry.ts';
import type { InboundLimiter } from './inbound-limits.ts';
import { type LocalDelivery, replyError, type TSystemReply } from './local-delivery.ts';

/** The internal topic (and bus room) that carries a presence room's join/leave events to its subscribers. */
export function presenceTopic(room: string): string {
  return `${EVENTS_PREFIX}${room}`;
}
const EVENTS_PREFIX = PRESENCE_EVENTS_PREFIX;

export interface IRoomPresenceOptions<M extends object> {
  presenceFn: TPresenceFn;
  presenceInfoFn?: TPresenceInfoFn<M>;
  store: IPresenceStore;
  registry: ClientRegistry<M>;
  delivery: LocalDelivery<M>;
  /** Hands a join/leave event to the other instances (a room message to `presenceTopic(room)`). */
  publish: (topic: string, event: string, data: unknown) => void;
  /**
   * Redis only: the same message encoded, given to the store so it is published in the same
   * round trip as the write (and only if the write changed something). Undefined: not ready.
   */
  encodeEvent?: (topic: string, event: string, data: unknown, dataJson: string) => IPresenceEvent | undefined;
  reply: TSystemReply<M>;
  limiter: InboundLimiter;
  logger: ILogger;
  /** Liveness TTL: the heartbeat and the sweep of dead instances run every third of it. */
  ttl: number;
}

/**
 * Keeps the presence rooms' member lists (through the store) in step with the registry, sends
 * each join/leave exactly once (by the instance whose store call changed something), answers
 * the `ws:presence` requests and (un)subscriptions, and sweeps the members of dead instances.
 */
export class RoomPresence<M extends object = AnyRecord> {
  /** This instance's presence memberships: client id → room → what was stored. */
  private readonly memberships = new Map<string, Map<string, IPresenceMember>>();
  /** Rooms whose events have local subscribers: the store was told (Redis publishes only for those). */
  private readonly watched = new Map<string, Promise<void>>();
  private timer?: ReturnType<typeof setInterval>;
  private sweeping = false;
  private lastFailureLog = 0;

  constructor(private readonly opts: IRoomPresenceOptions<M>) {}

  async start(): Promise<void> {
    await this.opts.store.start();
    this.timer = setInterval(() => void this.sweep(), Math.max(50, Math.floor(this.opts.ttl / 3)));
    this.timer.unref?.();
  }

  /** Removes this instance's members (announcing their leave) and its liveness. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const removals: Promise<void>[] = [];
    for (const [clientId, rooms] of this.memberships) {
      for (const [room, member] of rooms) removals.push(this.removeMember(room, clientId, member));
    }
    this.memberships.clear();
    for (const room of [...this.watched.keys()]) this.unwatch(room);
    await Promise.all(removals);
    await this.opts.store.stop().catch(() => {});
  }

  /** Called by the registry on every membership change. */
  readonly onMembership = (client: IWebSocketClient<M>, room: string, change: TMembershipChange): void => {
    if (room === client.id) return;
    if (room.startsWith('ws:')) {
      if (change !== 'join' && room.startsWith(EVENTS_PREFIX) && this.opts.registry.roomSize(room) === 0) {
        this.unwatch(room.slice(EVENTS_PREFIX.length));
      }
      return;
    }
    // A gap repair takes the client off the room for a moment: it stays a member (no event, no
    // write) and keeps its event subscription; its re-join (below) is no change either.
    if (change === 'suspend') return;
    if (change === 'join') {
      if (this.memberships.get(client.id)?.has(room)) return;
      if (this.isPresenceRoom(room)) this.addMember(client, room);
      return;
    }
    const rooms = this.memberships.get(client.id);
    const member = rooms?.get(room);
    if (!rooms || !member) return;
    rooms.delete(room);
    if (rooms.size === 0) this.memberships.delete(client.id);
    // A removed client's topics go with it; one that only left the room stops hearing its events.
    if (change === 'leave') this.opts.registry.leave(client, presenceTopic(room));
    void this.removeMember(room, client.id, member);
  };

  async members(room: string): Promise<IPresenceMember[]> {
    return this.opts.store.list(room);
  }

  isPresenceRoom(room: string): boolean {
    try {
      return this.opts.presenceFn({ room }) === true;
    } catch (error) {
      this.opts.logger.error(`presenceFn threw for room ${JSON.stringify(room)}; no presence`, error);
      return false;
    }
  }

  /** `ws:presence` `{ room }` → `{ room, members, clients, users }`. */
  async handleRequest(client: IWebSocketClient<M>, data: unknown, id?: string): Promise<void> {
    const room = this.checkRoom(client, data, WebSocketEvents.PRESENCE, id);
    if (room === undefined) return;
    const { limiter, reply } = this.opts;
    if (!limiter.mayStartRequest(client, id)) return;
    client.pendingRequests = (client.pendingRequests ?? 0) + 1;
    try {
      const members = await this.members(room);
      if (this.opts.registry.get(client.id) === client) {
        reply(client, WebSocketEvents.PRESENCE, { room, members, ...presenceStats(members) }, id);
      }
    } catch (error) {
      this.logFailure('presence read failed', error);
      this.refuse(client, WebSocketErrorCodes.PRESENCE_UNAVAILABLE, 'Presence cannot be read right now', id);
    } finally {
      client.pendingRequests = (client.pendingRequests ?? 1) - 1;
    }
  }

  /** `ws:presence:subscribe` / `ws:presence:unsubscribe` `{ room }` → `{ room }`. */
  async handleSubscription(
    client: IWebSocketClient<M>,
    data: unknown,
    id: string | undefined,
    on: boolean,
  ): Promise<void> {
    const event = on ? WebSocketEvents.PRESENCE_SUBSCRIBE : WebSocketEvents.PRESENCE_UNSUBSCRIBE;
    const room = on ? this.checkRoom(client, data, event, id) : this.readRoom(client, data, event, id);
    if (room === undefined) return;
    if (on) {
      this.opts.registry.join(client, presenceTopic(room));
      // The answer waits until the other instances know to publish this room's events.
      await this.watch(room);
      if (this.opts.registry.get(client.id) !== client) return;
    } else this.opts.registry.leave(client, presenceTopic(room));
    this.opts.reply(client, event, { room }, id);
  }

  /** Marks the room watched by this instance (once while it has local subscribers). */
  private watch(room: string): Promise<void> {
    let stored = this.watched.get(room);
    if (!stored) {
      stored = (this.opts.store.watch?.(room, true) ?? Promise.resolve()).catch((error: unknown) =>
        this.logFailure(`presence watch failed (room ${room})`, error),
      );
      this.watched.set(room, stored);
    }
    return stored;
  }

  private unwatch(room: string): void {
    if (!this.watched.delete(room)) return;
    this.opts.store
      .watch?.(room, false)
      .catch((error: unknown) => this.logFailure(`presence unwatch failed (room ${room})`, error));
  }

  private addMember(client: IWebSocketClient<M>, room: string): void {
    const member: IPresenceMember = { clientId: client.id };
    if (client.userId !== undefined) member.userId = client.userId;
    const { presenceInfoFn } = this.opts;
    if (presenceInfoFn) {
      try {
        const info = presenceInfoFn({
          clientId: client.id,
          userId: client.userId,
          metadata: client.metadata,
          room,
        });
        if (info !== undefined) member.info = info;
      } catch (error) {
        this.opts.logger.error(`presenceInfoFn threw for client ${client.id}; no info exposed`, error);
      }
    }
    let rooms = this.memberships.get(client.id);
    if (!rooms) {
      rooms = new Map();
      this.memberships.set(client.id, rooms);
    }
    rooms.set(room, member);
    // Store calls go out in order on one connection, so a quick join + leave is stored (and announced) in order.
    this.changeMember(room, member, true);
  }

  private removeMember(room: string, clientId: string, member: IPresenceMember): Promise<void> {
    return this.changeMember(room, member, false, clientId);
  }

  /**
   * Writes the change with its event: the store publishes it to the other instances when its
   * write changed something (one round trip in Redis), and the local subscribers get it then.
   */
  private changeMember(
    room: string,
    member: IPresenceMember,
    joined: boolean,
    clientId = member.clientId,
  ): Promise<void> {
    const event = joined ? WebSocketEvents.PRESENCE_JOIN : WebSocketEvents.PRESENCE_LEAVE;
    const data = { room, ...member };
    const topic = presenceTopic(room);
    const { encodeEvent } = this.opts;
    let encoded: IPresenceEvent | undefined;
    try {
      encoded = encodeEvent?.(topic, event, data, JSON.stringify(data));
    } catch (error) {
      this.logFailure('presence event not encoded', error);
    }
    const { store } = this.opts;
    const write = joined ? store.add(room, member, encoded) : store.remove(room, clientId, encoded);
    return write.then(
      (changed) => {
        if (changed) this.announce(room, member, joined, encoded === undefined);
      },
      (error: unknown) =>
        this.logFailure(`presence ${joined ? 'add' : 'remove'} failed (room ${room})`, error),
    );
  }

  /** Local subscribers always; the other instances too unless the store already published it. */
  private announce(room: string, member: IPresenceMember, joined: boolean, publish = true): void {
    const event = joined ? WebSocketEvents.PRESENCE_JOIN : WebSocketEvents.PRESENCE_LEAVE;
    const data = { room, ...member };
    const topic = presenceTopic(room);
    try {
      // Most presence rooms have no local subscriber to their events: nothing to encode then.
      if (this.opts.registry.roomSize(topic) > 0) this.opts.delivery.toRoom(topic, event, data);
      if (publish) this.opts.publish(topic, event, data);
    } catch (error) {
      this.logFailure('presence event not sent', error);
    }
  }

  /**
   * The heartbeat: renews the liveness (writing every local member again when the registration
   * was lost), writes the watches again, and sweeps the members of dead instances.
   */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    const { store } = this.opts;
    try {
      if (await store.renew?.()) await this.reregister();
      else if (this.watched.size > 0) await store.rewatch?.([...this.watched.keys()]);
      await store.sweep((room, member) => this.announce(room, member, false));
    } catch (error) {
      this.logFailure('presence heartbeat/sweep failed', error);
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * The registration was lost: every local member is written again, and those whose entry was
   * gone (swept, or lost by Redis) are announced as joins, to every instance (not only to those
   * watching: a Redis that lost its data lost the watches too).
   */
  private async reregister(): Promise<void> {
    const entries: Array<{ room: string; member: IPresenceMember }> = [];
    for (const rooms of this.memberships.values()) {
      for (const [room, member] of rooms) entries.push({ room, member });
    }
    await this.opts.store.reregister?.(entries, [...this.watched.keys()], (n) => {
      const { room, member } = entries[n]!;
      this.announce(room, member, true);
    });
    this.opts.logger.warn(
      `presence registration lost (instance paused, Redis stalled or lost data, or a write failed): ${entries.length} member(s) written again`,
    );
  }

  /** A valid room the client is in and that keeps presence, or undefined after answering with an error. */
  private checkRoom(
    client: IWebSocketClient<M>,
    data: unknown,
    event: string,
    id?: string,
  ): string | undefined {
    const room = this.readRoom(client, data, event, id);
    if (room === undefined) return undefined;
    if (!client.rooms.has(room) && !this.opts.registry.isSuspended(client, room)) {
      this.refuse(
        client,
        WebSocketErrorCodes.NOT_IN_ROOM,
        `Not a member of room ${JSON.stringify(room)}`,
        id,
      );
      return undefined;
    }
    if (!this.isPresenceRoom(room)) {
      this.refuse(client, WebSocketErrorCodes.PRESENCE_UNAVAILABLE, 'This room keeps no presence', id);
      return undefined;
    }
    return room;
  }

  private readRoom(
    client: IWebSocketClient<M>,
    data: unknown,
    event: string,
    id?: string,
  ): string | undefined {
    const room = isPlainObject(data) ? data.room : undefined;
    if (!isValidRoomName(room)) {
      this.refuse(client, WebSocketErrorCodes.INVALID_REQUEST, `${event} expects { room: string }`, id);
      return undefined;
    }
    return room;
  }

  private refuse(client: IWebSocketClient<M>, code: string, message: string, id?: string): void {
    replyError(this.opts.reply, client, code, message, id);
  }

  /** Rate-limited: an outage must not flood the log with one line per join. */
  private logFailure(what: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < 5_000) return;
    this.lastFailureLog = now;
    this.opts.logger.warn(what, error instanceof Error ? error.message : String(error));
  }
}
