import { WebSocketClientStates, WebSocketDefaults } from '../common/constants.ts';
import type { AnyRecord, IWebSocketClient } from '../common/types.ts';

const EMPTY: ReadonlySet<never> = new Set();

/**
 * The local connection registry: clients by id, by user and by room, and the
 * set of encrypted clients. Room membership is kept in step with the socket's
 * Bun topic subscription, so `server.publish(room)` reaches exactly the
 * unencrypted members of the room.
 */
export class ClientRegistry<MetadataType extends object = AnyRecord> {
  readonly clients = new Map<string, IWebSocketClient<MetadataType>>();
  private readonly users = new Map<string, Set<IWebSocketClient<MetadataType>>>();
  private readonly rooms = new Map<string, Set<IWebSocketClient<MetadataType>>>();
  /** Clients that only the outbound transformer may reach. */
  readonly encrypted = new Set<IWebSocketClient<MetadataType>>();

  get(clientId: string): IWebSocketClient<MetadataType> | undefined {
    return this.clients.get(clientId);
  }

  add(client: IWebSocketClient<MetadataType>): void {
    this.clients.set(client.id, client);
  }

  indexUser(client: IWebSocketClient<MetadataType>): void {
    if (client.userId === undefined) return;
    let set = this.users.get(client.userId);
    if (!set) {
      set = new Set();
      this.users.set(client.userId, set);
    }
    set.add(client);
  }

  /** Adds the client to a room; returns false when it was already a member. */
  join(client: IWebSocketClient<MetadataType>, room: string): boolean {
    if (client.rooms.has(room)) return false;
    client.rooms.add(room);
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(client);
    if (!client.encrypted) client.socket.subscribe(room);
    return true;
  }

  /** Removes the client from a room; returns false when it was not a member. */
  leave(client: IWebSocketClient<MetadataType>, room: string): boolean {
    if (!client.rooms.delete(room)) return false;
    this.dropRoomMember(room, client);
    if (!client.encrypted) client.socket.unsubscribe(room);
    return true;
  }

  /** Stops native fan-out to the client: from now on it is reached one by one. */
  markEncrypted(client: IWebSocketClient<MetadataType>): void {
    if (client.encrypted) return;
    client.encrypted = true;
    this.encrypted.add(client);
    for (const room of client.rooms) client.socket.unsubscribe(room);
    client.socket.unsubscribe(WebSocketDefaults.BROADCAST_TOPIC);
    client.socket.unsubscribe(client.id);
  }

  /** Forgets the client everywhere. Bun drops a closed socket's topics itself. */
  remove(client: IWebSocketClient<MetadataType>): void {
    if (this.clients.get(client.id) !== client) return;
    this.clients.delete(client.id);
    for (const room of client.rooms) this.dropRoomMember(room, client);
    if (client.userId !== undefined) {
      const set = this.users.get(client.userId);
      if (set) {
        set.delete(client);
        if (set.size === 0) this.users.delete(client.userId);
      }
    }
    this.encrypted.delete(client);
    client.state = WebSocketClientStates.DISCONNECTED;
  }

  roomMembers(room: string): ReadonlySet<IWebSocketClient<MetadataType>> {
    return this.rooms.get(room) ?? EMPTY;
  }

  userClients(userId: string): ReadonlySet<IWebSocketClient<MetadataType>> {
    return this.users.get(userId) ?? EMPTY;
  }

  /** Sizes of the three indexes; all zero once every client has gone. */
  sizes(): { clients: number; users: number; rooms: number } {
    return { clients: this.clients.size, users: this.users.size, rooms: this.rooms.size };
  }

  clear(): void {
    this.clients.clear();
    this.users.clear();
    this.rooms.clear();
    this.encrypted.clear();
  }

  private dropRoomMember(room: string, client: IWebSocketClient<MetadataType>): void {
    const members = this.rooms.get(room);
    if (!members) return;
    members.delete(client);
    if (members.size === 0) this.rooms.delete(room);
  }
}
