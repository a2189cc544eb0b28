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

/** Lower-case letters, digits and dashes, 1–32 characters, starting with a letter or digit. */
export function isRoomName(room: unknown): room is string {
  return typeof room === 'string' && /^[a-z0-9][a-z0-9-]{0,31}$/.test(room);
}
