import { WebSocketClientStates, WebSocketDefaults } from '../../src/common/constants.ts';
import type { IBunServer, IWebSocket, IWebSocketClient, TWebSocketPayload } from '../../src/common/types.ts';
import type { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';

/**
 * An in-memory stand-in for Bun's ServerWebSocket, enough to drive
 * `WebSocketServerHelper` through its lifecycle entry points without a network.
 * It tracks topic subscriptions like Bun does and records what was sent and how
 * it was closed. `close()` does not call back into the helper by itself: like
 * Bun, the close callback comes later, when the harness delivers it.
 */
export class FakeSocket implements IWebSocket<{ clientId: string }> {
  readonly data: { clientId: string };
  readonly remoteAddress = '127.0.0.1';
  readyState = 1;
  readonly topics = new Set<string>();
  sent = 0;
  errors = 0;
  lastFrame?: string;
  closeCode?: number;

  constructor(
    readonly clientId: string,
    private readonly onClose: (socket: FakeSocket) => void = () => {},
  ) {
    this.data = { clientId };
  }

  send(data: TWebSocketPayload): number {
    if (this.readyState !== 1) return 0;
    const text = typeof data === 'string' ? data : '';
    this.sent++;
    if (text.startsWith('{"event":"error"')) this.errors++;
    this.lastFrame = text;
    return text.length || 1;
  }

  publish(topic: string, data: TWebSocketPayload): number {
    return this.server?.publish(topic, data, false, this) ?? 0;
  }

  /** Set by FakeServer.attach so socket.publish() can fan out to the other subscribers. */
  server?: FakeServer;

  subscribe(topic: string): void {
    if (this.readyState === 1) this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  isSubscribed(topic: string): boolean {
    return this.topics.has(topic);
  }

  close(code?: number): void {
    if (this.readyState !== 1) return;
    this.readyState = 2;
    this.closeCode = code ?? 1000;
    this.topics.clear(); // Bun forgets a closing socket's subscriptions
    this.onClose(this);
  }

  cork<R = unknown>(cb: (ws: IWebSocket<{ clientId: string }>) => R): R {
    return cb(this);
  }
}

/** A Bun server stand-in whose `publish` fans out to the attached fake sockets subscribed to the topic. */
export class FakeServer implements IBunServer {
  readonly pendingWebSockets = 0;
  private readonly sockets = new Set<FakeSocket>();

  attach(socket: FakeSocket): void {
    socket.server = this;
    this.sockets.add(socket);
  }

  detach(socket: FakeSocket): void {
    this.sockets.delete(socket);
  }

  publish(topic: string, data: TWebSocketPayload, _compress?: boolean, except?: FakeSocket): number {
    let reached = 0;
    for (const socket of this.sockets) {
      if (socket !== except && socket.topics.has(topic) && socket.send(data) > 0) reached++;
    }
    return reached;
  }
}

/**
 * The registry invariants, checked through the helper's public queries only.
 * Throws a descriptive error at the first violation.
 *
 * - every registered client is keyed by its id and is not DISCONNECTED;
 * - a client is in a room's index iff the room is in `client.rooms`, and the
 *   room index has no other entries (its size equals the union of all `rooms`);
 * - the user index holds exactly the registered clients with a userId;
 * - no client in `gone` (disconnected) is anywhere;
 * - `authTimers` never exceeds the number of clients still authenticating;
 * - an open, unencrypted socket is subscribed to exactly its rooms, its own id,
 *   and (once authenticated) the broadcast topic.
 */
export function checkRegistryInvariants(helper: WebSocketServerHelper, gone: Iterable<string> = []): void {
  const fail = (message: string): never => {
    throw new Error(`invariant violated: ${message}`);
  };
  const clients = helper.getClients();
  const stats = helper.getStats();
  if (stats.clients !== clients.size) fail(`stats.clients ${stats.clients} != ${clients.size}`);

  const roomMembers = new Map<string, Set<IWebSocketClient>>();
  const userMembers = new Map<string, Set<IWebSocketClient>>();
  let notAuthenticated = 0;
  for (const [id, client] of clients) {
    if (client.id !== id) fail(`client keyed ${id} has id ${client.id}`);
    if (client.state === WebSocketClientStates.DISCONNECTED)
      fail(`disconnected client ${id} still registered`);
    if (client.state !== WebSocketClientStates.AUTHENTICATED) notAuthenticated++;
    for (const room of client.rooms) {
      addTo(roomMembers, room, client);
    }
    if (client.userId !== undefined) {
      if (client.state !== WebSocketClientStates.AUTHENTICATED) fail(`client ${id} has a userId before auth`);
      addTo(userMembers, client.userId, client);
    }
    const socket = client.socket;
    if (!client.encrypted && socket.readyState === 1 && socket instanceof FakeSocket) {
      const expected = new Set([...client.rooms, client.id]);
      if (client.state === WebSocketClientStates.AUTHENTICATED)
        expected.add(WebSocketDefaults.BROADCAST_TOPIC);
      if (expected.size !== socket.topics.size || [...expected].some((t) => !socket.topics.has(t))) {
        fail(`client ${id} topics [${[...socket.topics]}] != expected [${[...expected]}]`);
      }
    }
  }

  if (stats.rooms !== roomMembers.size)
    fail(`stats.rooms ${stats.rooms} != ${roomMembers.size} rooms in use`);
  for (const [room, members] of roomMembers) {
    const indexed = helper.getClientsByRoom({ room });
    if (indexed.length !== members.size || indexed.some((c) => !members.has(c))) {
      fail(`room ${JSON.stringify(room)} index disagrees with client.rooms`);
    }
  }
  if (stats.users !== userMembers.size) fail(`stats.users ${stats.users} != ${userMembers.size}`);
  for (const [userId, members] of userMembers) {
    const indexed = helper.getClientsByUser({ userId });
    if (indexed.length !== members.size || indexed.some((c) => !members.has(c))) {
      fail(`user ${userId} index disagrees with the clients`);
    }
  }
  for (const id of gone) {
    if (helper.getClients({ id }) !== undefined) fail(`disconnected client ${id} still registered`);
    // Its own id room is gone with it; other clients may still be in a room of that name
    // if validateRoomFn granted it to them (a named room like any other).
    if (helper.getClientsByRoom({ room: id }).some((member) => member.id === id))
      fail(`disconnected client ${id} still has its room`);
  }
  if (stats.authTimers > notAuthenticated) {
    fail(`${stats.authTimers} auth timers for ${notAuthenticated} unauthenticated clients`);
  }
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}
