import { WebSocketErrorCodes } from '../../common/constants.ts';
import type { IWebSocket, IWebSocketClient } from '../../common/types.ts';
import type { IRoomQuota } from '../../server/room-requests.ts';

/**
 * Caps across connections (the component's `clientCaps` option). Each is off unless set to a
 * positive integer. The address is the one the upgrade was counted under: `clientIpFn`'s answer,
 * else the socket's (`server.requestIP`).
 */
export interface IClientCapsOptions {
  /** Sockets open at once from one address; past it the upgrade gets 429 (or the socket 4007). */
  maxConnectionsPerAddress?: number | false;
  /** Rooms joined across all connections from one address; past it a join gets `ADDRESS_ROOM_LIMIT`. */
  maxRoomsPerAddress?: number | false;
  /** Rooms joined across all connections of one `userId`; past it a join gets `USER_ROOM_LIMIT`. */
  maxRoomsPerUser?: number | false;
}

/** What the component puts on a socket at the upgrade. */
export interface ICappedSocketData {
  clientId: string;
  address?: string;
  /** Set once the socket was counted under its address (so its close uncounts it once). */
  counted?: boolean;
}

interface ICounted {
  address: string | undefined;
  user: string | undefined;
  rooms: number;
}

const PREFIX = '[WebSocketComponent]';

function cap(name: string, value: unknown): number {
  if (value === undefined || value === false) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new Error(`${PREFIX} clientCaps.${name} must be a positive integer or false, got ${String(value)}`);
  }
  return value as number;
}

/** Rooms a client is in through joins (its own id room not counted; default rooms are). */
function roomCount(client: IWebSocketClient<object>): number {
  const { rooms } = client;
  return rooms.size - (rooms.has(client.id) ? 1 : 0);
}

/**
 * Counts sockets per address and rooms per address and per user, across this instance's
 * connections. Memory follows the live connections: an entry goes when its count reaches 0.
 */
export class ClientCaps implements IRoomQuota<object> {
  readonly maxConnectionsPerAddress: number;
  readonly maxRoomsPerAddress: number;
  readonly maxRoomsPerUser: number;
  private readonly connections = new Map<string, number>();
  private readonly addressRooms = new Map<string, number>();
  private readonly userRooms = new Map<string, number>();
  /** Rooms counted for each client id, and under which address and user. */
  private readonly counted = new Map<string, ICounted>();

  constructor(options: IClientCapsOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new Error(`${PREFIX} clientCaps must be an object or false`);
    }
    this.maxConnectionsPerAddress = cap('maxConnectionsPerAddress', options.maxConnectionsPerAddress);
    this.maxRoomsPerAddress = cap('maxRoomsPerAddress', options.maxRoomsPerAddress);
    this.maxRoomsPerUser = cap('maxRoomsPerUser', options.maxRoomsPerUser);
  }

  /** False when every cap is off (the component then does no work for them). */
  get enabled(): boolean {
    return this.countsConnections || this.countsRooms;
  }

  get countsConnections(): boolean {
    return this.maxConnectionsPerAddress !== Number.POSITIVE_INFINITY;
  }

  get countsRooms(): boolean {
    return (
      this.maxRoomsPerAddress !== Number.POSITIVE_INFINITY ||
      this.maxRoomsPerUser !== Number.POSITIVE_INFINITY
    );
  }

  /** Sockets counted under an address now (for tests and stats). */
  connectionsOf(address: string): number {
    return this.connections.get(address) ?? 0;
  }

  /** Rooms counted under an address / a user now. */
  roomsOf(opts: { address?: string; userId?: string }): number {
    if (opts.address !== undefined) return this.addressRooms.get(opts.address) ?? 0;
    return opts.userId === undefined ? 0 : (this.userRooms.get(opts.userId) ?? 0);
  }

  /** Whether an upgrade from `address` may go on (checked before the socket exists). */
  admitUpgrade(address: string): boolean {
    return (this.connections.get(address) ?? 0) < this.maxConnectionsPerAddress;
  }

  /**
   * A socket opened: counted under its address. False when that takes the address past the cap
   * (upgrades that raced past `admitUpgrade`): the caller closes it with 4007.
   */
  opened(socket: IWebSocket): boolean {
    const data = socket.data as ICappedSocketData | undefined;
    if (!this.countsConnections || data?.address === undefined) return true;
    const count = (this.connections.get(data.address) ?? 0) + 1;
    this.connections.set(data.address, count);
    data.counted = true;
    return count <= this.maxConnectionsPerAddress;
  }

  /** A socket closed: uncounted, and the rooms of its client released. */
  closed(socket: IWebSocket): void {
    const data = socket.data as ICappedSocketData | undefined;
    if (!data) return;
    if (data.counted && data.address !== undefined) {
      data.counted = false;
      decrement(this.connections, data.address, 1);
    }
    const entry = this.counted.get(data.clientId);
    if (entry) {
      this.counted.delete(data.clientId);
      this.add(entry, -entry.rooms);
    }
  }

  reserve(client: IWebSocketClient<object>, added: number): { code: string; message: string } | undefined {
    let entry = this.counted.get(client.id);
    if (!entry) {
      const address = (client.socket.data as ICappedSocketData | undefined)?.address;
      entry = { address, user: client.userId, rooms: 0 };
      this.counted.set(client.id, entry);
      this.add(entry, roomCount(client)); // default rooms and anything joined before
    }
    const { address, user } = entry;
    if (address !== undefined && (this.addressRooms.get(address) ?? 0) + added > this.maxRoomsPerAddress) {
      return {
        code: WebSocketErrorCodes.ADDRESS_ROOM_LIMIT,
        message: `The connections of one address may be in at most ${this.maxRoomsPerAddress} rooms; nothing joined`,
      };
    }
    if (user !== undefined && (this.userRooms.get(user) ?? 0) + added > this.maxRoomsPerUser) {
      return {
        code: WebSocketErrorCodes.USER_ROOM_LIMIT,
        message: `The connections of one user may be in at most ${this.maxRoomsPerUser} rooms; nothing joined`,
      };
    }
    this.add(entry, added);
    return undefined;
  }

  sync(client: IWebSocketClient<object>): void {
    const entry = this.counted.get(client.id);
    if (!entry || client.socket.readyState > 1) return; // never counted, or released at its close
    this.add(entry, roomCount(client) - entry.rooms);
  }

  private add(entry: ICounted, delta: number): void {
    if (delta === 0) return;
    entry.rooms += delta;
    if (entry.address !== undefined && this.maxRoomsPerAddress !== Number.POSITIVE_INFINITY) {
      decrement(this.addressRooms, entry.address, -delta);
    }
    if (entry.user !== undefined && this.maxRoomsPerUser !== Number.POSITIVE_INFINITY) {
      decrement(this.userRooms, entry.user, -delta);
    }
  }
}

/** Subtracts `by` (negative: adds); the key goes at 0. */
function decrement(map: Map<string, number>, key: string, by: number): void {
  const left = (map.get(key) ?? 0) - by;
  if (left > 0) map.set(key, left);
  else map.delete(key);
}
