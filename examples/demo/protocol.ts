// Events and payloads the demo page and the demo server exchange (on top of
// roomcast's own protocol). Shared by the server, the page and the announce CLI.

export const DemoEvents = {
  /** page → server `{ room, text }`; server → room `IChatMessage` */
  CHAT: 'chat',
  /** page → server, after a join or leave: "compare my rooms with the member lists" */
  ROOMS_CHANGED: 'rooms-changed',
  /** server → room `IPresenceUpdate` */
  PRESENCE: 'presence',
  /** server or announce CLI → anyone `IAnnouncement` */
  ANNOUNCEMENT: 'announcement',
  /** server → sender `{ room, reason }` when a chat message was not accepted */
  CHAT_REFUSED: 'chat-refused',
} as const;

export interface IChatMessage {
  id: string;
  room: string;
  from: string;
  text: string;
  at: string;
  /** serverId of the instance the sender is connected to. */
  instanceId: string;
}

export interface IPresenceUpdate {
  room: string;
  members: Array<{ name: string; instance: string }>;
  change?: { name: string; action: 'joined' | 'left' };
}

export interface IAnnouncement {
  text: string;
  from: string;
  at: string;
}

/**
 * Which rooms keep a history, for the servers and the announce CLI alike (they must agree): every
 * chat room keeps its last 200 publications (chat, presence, announcements) for at most 30 minutes.
 */
export function chatRoomHistory({
  room,
}: {
  room: string;
}): { size: number; ttl: number; metaTtl: number } | null {
  // A room's position outlives its last message by an hour (not the default day): a visitor who
  // writes into many fresh rooms leaves nothing in Redis for long.
  return isRoomName(room) ? { size: 200, ttl: 30 * 60_000, metaTtl: 60 * 60_000 } : null;
}

/** Lower-case letters, digits and dashes, 1–32 characters, starting with a letter or digit. */
export function isRoomName(room: unknown): room is string {
  return typeof room === 'string' && /^[a-z0-9][a-z0-9-]{0,31}$/.test(room);
}
