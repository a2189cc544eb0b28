// The demo's chat rules, as the WebSocket component's handlers: who may sign
// in, which rooms exist, what a chat message looks like, and who is online.

import type {
  ILogger,
  THistoryFn,
  TWebSocketAuthenticateFn,
  TWebSocketClientConnectedFn,
  TWebSocketClientDisconnectedFn,
  TWebSocketMessageHandler,
  TWebSocketValidateRoomFn,
  WebSocketServerHelper,
} from '../../src/index.ts';
import type { IInstanceCounter } from './instances.ts';
import {
  chatRoomHistory,
  DemoEvents,
  type IAnnouncement,
  type IChatMessage,
  type IPresenceUpdate,
  isRoomName,
} from './protocol.ts';
import { SESSION_COOKIE, type SessionStore } from './sessions.ts';

/** The `info` each presence member carries (see `presenceInfo`). */
interface IMemberInfo {
  name: string;
  instance: string;
}

const NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,23}$/u;
const MAX_TEXT_LENGTH = 500;

interface ILocalClient {
  name: string;
  /** Rooms whose member list this client's page was last told about. */
  listed: Set<string>;
}

export interface IChatServiceOptions {
  /** Resolved on use: the helper exists only once the application listens. */
  helper: () => WebSocketServerHelper;
  instances: IInstanceCounter;
  logger: ILogger;
  /** Cookie sessions (POST /api/session); the WebSocket authenticates from their cookie. */
  sessions: SessionStore;
}

export class ChatService {
  private readonly clients = new Map<string, ILocalClient>();
  // Member-list updates run one at a time, so they reach the rooms in the order they happened.
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: IChatServiceOptions) {}

  /**
   * A person signs in with a display name; it becomes their userId. The name comes in the
   * `authenticate` frame, or, when the frame carries none, from the session cookie the browser
   * sent with the upgrade (signed in over HTTP: no token in the page's JavaScript).
   */
  readonly authenticate: TWebSocketAuthenticateFn = (data, upgrade) => {
    const given = typeof data.name === 'string' ? data.name.trim() : undefined;
    const name = given ?? this.opts.sessions.nameOf(upgrade?.cookies[SESSION_COOKIE]) ?? '';
    return NAME_PATTERN.test(name) ? { userId: name, metadata: { name } } : null;
  };

  /** Whether `name` may be a display name (the sign-in form and POST /api/session check it). */
  static isName(name: string): boolean {
    return NAME_PATTERN.test(name);
  }

  /**
   * Every chat room keeps a history: a page entering a room shows its recent messages, and a
   * page that reconnects gets what it missed (the SDK re-joins with its last position).
   */
  readonly historyPolicy: THistoryFn = chatRoomHistory;

  /** Every chat room keeps presence (roomcast's own, on every instance). */
  readonly presencePolicy = ({ room }: { room: string }): boolean => isRoomName(room);

  /** What a member shows of itself: its name and the instance it is connected to. */
  readonly presenceInfo = ({ metadata }: { metadata?: { name?: unknown } }): IMemberInfo => ({
    name: typeof metadata?.name === 'string' ? metadata.name : 'anonymous',
    instance: shortId(this.opts.helper().serverId),
  });

  /** Any well-formed room name may be joined; rooms are created on first use. */
  readonly validateRooms: TWebSocketValidateRoomFn = ({ rooms }) => rooms.filter(isRoomName);

  readonly onConnected: TWebSocketClientConnectedFn = ({ clientId, userId }) => {
    const name = userId ?? 'anonymous';
    this.clients.set(clientId, { name, listed: new Set() });
    const helper = this.opts.helper();
    const welcome: IAnnouncement = {
      text: `Welcome, ${name}! You are connected to instance ${shortId(helper.serverId)}.`,
      from: 'server',
      at: new Date().toISOString(),
    };
    helper.sendToClient({ clientId, event: DemoEvents.ANNOUNCEMENT, data: welcome });
    return this.enqueue(() => this.syncRooms(clientId));
  };

  readonly onDisconnected: TWebSocketClientDisconnectedFn = ({ clientId }) =>
    this.enqueue(() => this.unlist(clientId));

  readonly onMessage: TWebSocketMessageHandler = ({ clientId, message }) => {
    switch (message.event) {
      case DemoEvents.CHAT:
        this.chat(clientId, message.data);
        return;
      // The page says when its rooms changed; the server then sends the rooms' member lists.
      case DemoEvents.ROOMS_CHANGED:
        return this.enqueue(() => this.syncRooms(clientId));
      default:
        this.opts.logger.debug(`ignoring unknown event "${message.event}" from ${clientId}`);
    }
  };

  /** Once the server listens: this instance is counted under its helper's id. */
  async start(): Promise<void> {
    await this.opts.instances.start(this.opts.helper().serverId);
  }

  /** Before the sockets close (the helper's shutdown removes its members from presence itself). */
  async stop(): Promise<void> {
    await this.opts.instances.close();
  }

  /** Figures for the status panel. */
  async status(): Promise<{
    instanceId: string;
    instances: number;
    clients: number;
    users: number;
    rooms: number;
    encryptedClients: number;
  }> {
    const helper = this.opts.helper();
    const stats = helper.getStats();
    let encryptedClients = 0;
    for (const client of helper.getClients().values()) if (client.encrypted) encryptedClients++;
    return {
      instanceId: shortId(helper.serverId),
      instances: await this.opts.instances.count(),
      clients: stats.clients,
      users: stats.users,
      // Every client has a private room named after its id; those are not chat rooms.
      rooms: stats.rooms - stats.clients,
      encryptedClients,
    };
  }

  private chat(clientId: string, data: unknown): void {
    const helper = this.opts.helper();
    const client = helper.getClients({ id: clientId });
    const local = this.clients.get(clientId);
    const { room, text } = (data ?? {}) as { room?: unknown; text?: unknown };
    if (!client || !local || typeof room !== 'string' || typeof text !== 'string') return;
    const trimmed = text.trim();
    if (!client.rooms.has(room)) {
      helper.sendToClient({
        clientId,
        event: DemoEvents.CHAT_REFUSED,
        data: { room, reason: 'join the room first' },
      });
      return;
    }
    if (trimmed.length === 0 || trimmed.length > MAX_TEXT_LENGTH) return;
    const message: IChatMessage = {
      id: crypto.randomUUID(),
      room,
      from: local.name,
      text: trimmed,
      at: new Date().toISOString(),
      instanceId: helper.serverId,
    };
    // send(): delivered here and, through Redis, on every other instance.
    helper.send({ destination: room, payload: { topic: DemoEvents.CHAT, data: message } });
  }

  /** Sends the member list of each room the client entered or left since the last time. */
  private async syncRooms(clientId: string): Promise<void> {
    const helper = this.opts.helper();
    const local = this.clients.get(clientId);
    const client = helper.getClients({ id: clientId });
    if (!local || !client) return;
    const current = new Set([...client.rooms].filter(isRoomName));
    for (const room of current) {
      if (local.listed.has(room)) continue;
      local.listed.add(room);
      helper.joinRoom({ clientId, room: membersRoom(room) });
      await this.publishPresence(room, { name: local.name, action: 'joined' });
    }
    for (const room of [...local.listed]) {
      if (current.has(room)) continue;
      local.listed.delete(room);
      helper.leaveRoom({ clientId, room: membersRoom(room) });
      await this.publishPresence(room, { name: local.name, action: 'left' });
    }
  }

  private async unlist(clientId: string): Promise<void> {
    const local = this.clients.get(clientId);
    if (!local) return;
    this.clients.delete(clientId);
    for (const room of local.listed) await this.publishPresence(room, { name: local.name, action: 'left' });
  }

  private async publishPresence(room: string, change: IPresenceUpdate['change']): Promise<void> {
    // roomcast's presence: every member on every instance (the instance's liveness checked).
    const members = await this.opts.helper().presence({ room });
    const update: IPresenceUpdate = {
      room,
      members: members
        .map((member) => member.info as IMemberInfo)
        .sort((a, b) => a.name.localeCompare(b.name)),
      change,
    };
    // To the room's member-list companion, which keeps no history: only chat messages (what a
    // visitor writes, at the rate limits allow) create history in Redis, never joins and leaves.
    this.opts
      .helper()
      .send({ destination: membersRoom(room), payload: { topic: DemoEvents.PRESENCE, data: update } });
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((error: unknown) => {
      this.opts.logger.error('member list update failed', error);
    });
    this.queue = run;
    return run;
  }
}

/**
 * The room a chat room's member lists go to. Not a chat room name (it has a dot), so it keeps no
 * history and a page cannot ask for it; the server adds and removes its members.
 */
function membersRoom(room: string): string {
  return `${room}.members`;
}

/** The first block of a UUID: enough to tell instances apart on screen. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
