import { type TWebSocketClientState, WebSocketClientStates } from '../common/constants.ts';
import type { AnyRecord, IWebSocket, IWebSocketClient } from '../common/types.ts';
import type { IDeadline } from './deadline-queue.ts';

/**
 * The helper's record of one connection. Memory per connection is the product's cost, so every
 * field the record ever gets is declared here (the engine lays them out inline, with no later
 * shape changes), and the rooms take no `Set` while the client is only in the rooms every client
 * is in: its own id room and the default rooms. `rooms` builds the `Set` the first time anything
 * reads it (the API promises a live `Set<string>`), and from then on the `Set` is the truth.
 */
export class ClientRecord<MetadataType extends object = AnyRecord> implements IWebSocketClient<MetadataType> {
  userId: string | undefined = undefined;
  metadata: MetadataType | undefined = undefined;
  state: TWebSocketClientState = WebSocketClientStates.UNAUTHORIZED;
  backpressured = false;
  encrypted = false;
  connectedAt: number;
  lastActivity: number;
  /** @internal inbound limit state (see `InboundLimiter`), declared so the shape never changes */
  frameTokens: number | undefined = undefined;
  /** @internal */ byteTokens: number | undefined = undefined;
  /** @internal */ tokensAt: number | undefined = undefined;
  /** @internal */ refusals: number | undefined = undefined;
  /** @internal */ refusalLevel: number | undefined = undefined;
  /** @internal */ refusalsAt: number | undefined = undefined;
  /** @internal */ pendingRequests: number | undefined = undefined;
  /** @internal */ unauthenticatedFrames: number | undefined = undefined;
  /** @internal the pending authentication deadline (`SessionManager`) */
  authDeadline: IDeadline<IWebSocketClient<MetadataType>> | undefined = undefined;
  /**
   * @internal While set, the client's rooms are exactly these (the server's shared list of default
   * rooms) and its own id room, and no `Set` exists yet.
   */
  implicitRooms: readonly string[] | undefined = undefined;
  /**
   * @internal True while the registry counts the client in every default room without listing it
   * in their member sets (see `ClientRegistry.admitToRooms`).
   */
  inDefaultRooms = false;
  /** @internal the rooms once they needed a `Set` (see `rooms`) */
  roomSet: Set<string> | undefined = undefined;

  constructor(
    readonly id: string,
    readonly socket: IWebSocket,
    now: number,
  ) {
    this.connectedAt = now;
    this.lastActivity = now;
  }

  get rooms(): Set<string> {
    if (this.roomSet === undefined) {
      const implicit = this.implicitRooms;
      this.roomSet = implicit === undefined ? new Set() : new Set([...implicit, this.id]);
      this.implicitRooms = undefined;
    }
    return this.roomSet;
  }

  /** What `JSON.stringify` saw of the plain record before: the public fields, not the internal ones. */
  toJSON(): IWebSocketClient<MetadataType> {
    const { id, userId, socket, state, rooms, backpressured, encrypted, connectedAt, lastActivity } = this;
    const fields = { id, userId, socket, state, rooms, backpressured, encrypted, connectedAt, lastActivity };
    return this.metadata === undefined ? fields : { ...fields, metadata: this.metadata };
  }
}

/** Whether `client` is in `room`, without building a compact record's `Set`. */
export function isInRoom(client: IWebSocketClient<object>, room: string): boolean {
  const implicit = (client as Partial<ClientRecord>).implicitRooms;
  if (implicit === undefined) return client.rooms.has(room);
  return room === client.id || implicit.includes(room);
}

/** The rooms of `client`, without building a compact record's `Set`. */
export function roomsOf(client: IWebSocketClient<object>): Iterable<string> {
  const implicit = (client as Partial<ClientRecord>).implicitRooms;
  return implicit === undefined ? client.rooms : [...implicit, client.id];
}
