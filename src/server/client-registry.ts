import { WebSocketClientStates, WebSocketDefaults } from '../common/constants.ts';
import type { AnyRecord, IWebSocketClient } from '../common/types.ts';
import { type ClientRecord, isInRoom, roomsOf } from './client-record.ts';

const EMPTY: ReadonlySet<never> = new Set();

/** Clients of a room or user: a live index `Set`, or a small array for the no-`Set` cases. */
/**
 * Told when a room, a user or an authenticated client starts or stops having a presence on this
 * instance (the `rooms` subscription mode subscribes its Redis channels only meanwhile). The
 * registry's own indexes are the reference count: each is called once per transition.
 */
export interface IMembershipListener {
  roomOpened(room: string): void;
  roomClosed(room: string): void;
  userOpened(userId: string): void;
  userClosed(userId: string): void;
  clientOpened(clientId: string): void;
  clientClosed(clientId: string): void;
}

export type TClientGroup<M extends object> =
  | ReadonlySet<IWebSocketClient<M>>
  | readonly IWebSocketClient<M>[];

/**
 * The local connection registry: clients by id, by user and by room, and the
 * set of encrypted clients. Room membership is kept in step with the socket's
 * Bun topic subscription, so `server.publish(room)` reaches exactly the
 * unencrypted members of the room.
 *
 * Memory per connection is the product's cost, so the common cases take no
 * `Set` and no member entry: a user with a single connection is indexed by the
 * client itself; a client's own id room is answered from `clients` (the socket
 * is subscribed to its id topic from open); a client admitted to the default
 * rooms is counted in them (`implicitMembers`) instead of being listed in their
 * member sets, and a `ClientRecord` keeps no `Set` of rooms while those are all
 * its rooms (see client-record.ts).
 */
/**
 * What happened to a client's membership of a room. `suspend`: taken off the room for a moment
 * (a gap repair re-joins it); the matching `join` follows, or a `remove` if it disconnects first.
 */
export type TMembershipChange = 'join' | 'leave' | 'remove' | 'suspend';

export class ClientRegistry<MetadataType extends object = AnyRecord> {
  /**
   * Told of every membership change of a named room (not a client's own id room); set only
   * when presence is on, so without it a join costs nothing more.
   */
  onMembership?: (client: IWebSocketClient<MetadataType>, room: string, change: TMembershipChange) => void;
  readonly clients = new Map<string, IWebSocketClient<MetadataType>>();
  private readonly users = new Map<
    string,
    IWebSocketClient<MetadataType> | Set<IWebSocketClient<MetadataType>>
  >();
  private readonly rooms = new Map<string, Set<IWebSocketClient<MetadataType>>>();
  /** Clients currently in their own id room (counted in `sizes().rooms`). */
  private ownRooms = 0;
  /** The default rooms, as admitted (`admitToRooms`); their implicit members are counted, not listed. */
  private defaultRooms: readonly string[] = [];
  /** Clients in every default room without an entry in the rooms' member sets (`inDefaultRooms`). */
  private implicitMembers = 0;
  /** Clients that only the outbound transformer may reach. */
  readonly encrypted = new Set<IWebSocketClient<MetadataType>>();
  /** Absent unless the bus subscribes per room: nothing is paid for it otherwise. */
  listener?: IMembershipListener;
  /** Rooms a client was suspended from (`suspend`) and not re-joined yet; absent until the first. */
  private suspended?: Map<IWebSocketClient<MetadataType>, Set<string>>;

  get(clientId: string): IWebSocketClient<MetadataType> | undefined {
    return this.clients.get(clientId);
  }

  add(client: IWebSocketClient<MetadataType>): void {
    this.clients.set(client.id, client);
  }

  /** Indexes an authenticated client by user, and makes it reachable by id (called once, at authentication). */
  indexUser(client: IWebSocketClient<MetadataType>): void {
    this.listener?.clientOpened(client.id);
    if (client.userId === undefined) return;
    const entry = this.users.get(client.userId);
    if (entry === undefined) {
      this.users.set(client.userId, client);
      this.listener?.userOpened(client.userId);
    } else if (entry instanceof Set) entry.add(client);
    else if (entry !== client) this.users.set(client.userId, new Set([entry, client]));
  }

  /**
   * Puts a newly authenticated client in the default rooms and its own id room (its socket
   * subscribed to the id topic at open). A `ClientRecord` is counted in the default rooms rather
   * than listed, and keeps no `Set`, unless presence watches memberships (it is told of each join).
   */
  admitToRooms(client: IWebSocketClient<MetadataType>, defaultRooms: readonly string[]): void {
    const record = client as Partial<ClientRecord<MetadataType>>;
    const compact =
      !this.onMembership &&
      record.inDefaultRooms === false &&
      record.roomSet === undefined &&
      record.implicitRooms === undefined &&
      (this.implicitMembers === 0 || defaultRooms === this.defaultRooms) &&
      !defaultRooms.includes(client.id);
    if (!compact) {
      for (const room of defaultRooms) this.join(client, room);
      this.enterOwnRoom(client);
      return;
    }
    this.defaultRooms = defaultRooms;
    record.inDefaultRooms = true;
    record.implicitRooms = defaultRooms;
    this.implicitMembers++;
    this.ownRooms++;
    for (const room of defaultRooms) {
      if (!client.encrypted) client.socket.subscribe(room);
      this.opened(room);
    }
    this.opened(client.id);
  }

  /** Puts a client in its own id room (its socket subscribed to the id topic at open). */
  enterOwnRoom(client: IWebSocketClient<MetadataType>): void {
    if (isInRoom(client, client.id)) return;
    client.rooms.add(client.id);
    this.ownRooms++;
    this.opened(client.id);
  }

  /** Whether the client is in `room` (for a compact record, without building its `Set`). */
  isMember(client: IWebSocketClient<MetadataType>, room: string): boolean {
    return isInRoom(client, room);
  }

  /**
   * Adds the client to a room; returns false when it was already a member, or is not admitted yet
   * (nothing may reach a socket before admission, room messages included).
   */
  join(client: IWebSocketClient<MetadataType>, room: string): boolean {
    if (client.state !== WebSocketClientStates.AUTHENTICATED || isInRoom(client, room)) return false;
    if (room === client.id) {
      // Implicit room: no member set. Re-subscribe in case the application had left it.
      this.enterOwnRoom(client);
      if (!client.encrypted) client.socket.subscribe(room);
      return true;
    }
    client.rooms.add(room);
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(client);
    this.opened(room);
    if (!client.encrypted) client.socket.subscribe(room);
    if (this.suspended !== undefined && this.suspended.size > 0) this.resumed(client, room);
    this.onMembership?.(client, room, 'join');
    return true;
  }

  /**
   * Takes the client off a room until it joins it again (a gap repair): like `leave` for
   * delivery, but the membership hook hears `suspend`, so presence keeps the member and its
   * event subscription. A client removed before it re-joins is reported `remove` for the room.
   */
  suspend(client: IWebSocketClient<MetadataType>, room: string): boolean {
    if (!this.onMembership || room === client.id) return this.leave(client, room);
    if (!this.leave(client, room, 'suspend')) return false;
    this.suspended ??= new Map();
    let rooms = this.suspended.get(client);
    if (!rooms) {
      rooms = new Set();
      this.suspended.set(client, rooms);
    }
    rooms.add(room);
    return true;
  }

  /** Whether the client was suspended from `room` (`suspend`) and has not re-joined it yet. */
  isSuspended(client: IWebSocketClient<MetadataType>, room: string): boolean {
    return this.suspended?.get(client)?.has(room) === true;
  }

  private resumed(client: IWebSocketClient<MetadataType>, room: string): void {
    const rooms = this.suspended!.get(client);
    if (!rooms?.delete(room)) return;
    if (rooms.size === 0) this.suspended!.delete(client);
  }

  /** Removes the client from a room; returns false when it was not a member. */
  leave(
    client: IWebSocketClient<MetadataType>,
    room: string,
    change: 'leave' | 'suspend' = 'leave',
  ): boolean {
    if (!isInRoom(client, room)) return false;
    if (room !== client.id && this.isImplicitMember(client, room)) this.listInDefaultRooms(client);
    client.rooms.delete(room);
    if (room === client.id) this.ownRooms--;
    else this.dropRoomMember(room, client);
    this.closed(room);
    if (!client.encrypted) client.socket.unsubscribe(room);
    if (room !== client.id) this.onMembership?.(client, room, change);
    return true;
  }

  /** Stops native fan-out to the client: from now on it is reached one by one. */
  markEncrypted(client: IWebSocketClient<MetadataType>): void {
    if (client.encrypted) return;
    client.encrypted = true;
    this.encrypted.add(client);
    for (const room of roomsOf(client)) client.socket.unsubscribe(room);
    client.socket.unsubscribe(WebSocketDefaults.BROADCAST_TOPIC);
    client.socket.unsubscribe(client.id);
  }

  /** Forgets the client everywhere. Bun drops a closed socket's topics itself. */
  remove(client: IWebSocketClient<MetadataType>): void {
    if (this.clients.get(client.id) !== client) return;
    this.clients.delete(client.id);
    const record = client as Partial<ClientRecord<MetadataType>>;
    const implicit = record.inDefaultRooms === true;
    if (implicit) {
      record.inDefaultRooms = false;
      this.implicitMembers--;
    }
    if (record.implicitRooms !== undefined) {
      // Compact: the default rooms and the own id room, nothing to unlist.
      for (const room of record.implicitRooms) this.closed(room);
      this.ownRooms--;
      this.closed(client.id);
    } else {
      for (const room of client.rooms) {
        if (room === client.id) this.ownRooms--;
        else {
          if (!implicit || !this.defaultRooms.includes(room)) this.dropRoomMember(room, client);
          this.onMembership?.(client, room, 'remove');
        }
        this.closed(room);
      }
    }
    const suspended = this.suspended?.get(client);
    if (suspended) {
      this.suspended!.delete(client);
      for (const room of suspended) this.onMembership?.(client, room, 'remove');
    }
    if (this.listener && client.state === WebSocketClientStates.AUTHENTICATED) {
      this.listener.clientClosed(client.id);
    }
    if (client.userId !== undefined) {
      const entry = this.users.get(client.userId);
      if (entry === client) {
        this.users.delete(client.userId);
        this.listener?.userClosed(client.userId);
      } else if (entry instanceof Set) {
        entry.delete(client);
        if (entry.size === 1) this.users.set(client.userId, entry.values().next().value!);
      }
    }
    this.encrypted.delete(client);
    client.state = WebSocketClientStates.DISCONNECTED;
  }

  /** Members of a room on this instance, including a client in its own id room. */
  roomMembers(room: string): TClientGroup<MetadataType> {
    const members = this.rooms.get(room);
    const owner = this.ownRoomMember(room);
    const implicit = this.implicitMembers > 0 && this.defaultRooms.includes(room);
    if (!owner && !implicit) return members ?? EMPTY;
    const group = members ? [...members] : [];
    if (implicit)
      for (const client of this.clients.values()) if (this.isImplicitMember(client, room)) group.push(client);
    // Another client can only share an id room if the application granted it.
    if (owner) group.push(owner);
    return group;
  }

  /** The client whose own id room `room` is, while it is a member of it. */
  ownRoomMember(room: string): IWebSocketClient<MetadataType> | undefined {
    const client = this.clients.get(room);
    return client && isInRoom(client, room) ? client : undefined;
  }

  /** Number of members of a room on this instance, without building the group. */
  roomSize(room: string): number {
    const implicit = this.implicitMembers > 0 && this.defaultRooms.includes(room) ? this.implicitMembers : 0;
    return (this.rooms.get(room)?.size ?? 0) + implicit + (this.ownRoomMember(room) ? 1 : 0);
  }

  userClients(userId: string): TClientGroup<MetadataType> {
    const entry = this.users.get(userId);
    if (entry === undefined) return EMPTY;
    return entry instanceof Set ? entry : [entry];
  }

  /** Every named room with local members (default rooms kept open by implicit members included). */
  *roomNames(): IterableIterator<string> {
    yield* this.rooms.keys();
    if (this.implicitMembers > 0) {
      for (const room of new Set(this.defaultRooms)) if (!this.rooms.has(room)) yield room;
    }
  }

  /** Sizes of the three indexes (`rooms` includes the id rooms); all zero once every client has gone. */
  sizes(): { clients: number; users: number; rooms: number } {
    // Default rooms that only implicit members keep open have no member set to count.
    let unlisted = 0;
    if (this.implicitMembers > 0) {
      for (const room of new Set(this.defaultRooms)) if (!this.rooms.has(room)) unlisted++;
    }
    // An id room that another client was also granted is already a named room.
    return {
      clients: this.clients.size,
      users: this.users.size,
      rooms: this.rooms.size + unlisted + this.ownRooms - this.sharedOwnRooms(),
    };
  }

  clear(): void {
    this.suspended = undefined;
    this.clients.clear();
    this.users.clear();
    this.rooms.clear();
    this.encrypted.clear();
    this.ownRooms = 0;
    this.implicitMembers = 0;
  }

  /** Id rooms that also have a member set (the application granted them to other clients); normally none. */
  private sharedOwnRooms(): number {
    if (this.rooms.size === 0 || this.ownRooms === 0) return 0;
    let shared = 0;
    for (const room of this.rooms.keys()) if (this.ownRoomMember(room)) shared++;
    return shared;
  }

  /** After a member was added: the room's first local member opens it. */
  private opened(room: string): void {
    if (this.listener && this.roomSize(room) === 1) this.listener.roomOpened(room);
  }

  /** After a member was removed: the last one closes it. */
  private closed(room: string): void {
    if (this.listener && this.roomSize(room) === 0) this.listener.roomClosed(room);
  }

  /** Whether the client is counted in `room` as an implicit member of the default rooms. */
  private isImplicitMember(client: IWebSocketClient<MetadataType>, room: string): boolean {
    return (
      (client as Partial<ClientRecord<MetadataType>>).inDefaultRooms === true &&
      this.defaultRooms.includes(room)
    );
  }

  /**
   * Turns an implicit member of the default rooms into a listed one (it is about to leave one of
   * them): from now on its default rooms are ordinary rooms.
   */
  private listInDefaultRooms(client: IWebSocketClient<MetadataType>): void {
    (client as Partial<ClientRecord<MetadataType>>).inDefaultRooms = false;
    this.implicitMembers--;
    for (const room of this.defaultRooms) {
      if (!isInRoom(client, room)) continue;
      let members = this.rooms.get(room);
      if (!members) {
        members = new Set();
        this.rooms.set(room, members);
      }
      members.add(client);
    }
  }

  private dropRoomMember(room: string, client: IWebSocketClient<MetadataType>): void {
    const members = this.rooms.get(room);
    if (!members) return;
    members.delete(client);
    if (members.size === 0) this.rooms.delete(room);
  }
}
