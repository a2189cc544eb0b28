import { WebSocketLimits } from '../common/constants.ts';

/** A room name is a non-empty string of at most 256 characters that does not start with `ws:`. */
export function isValidRoomName(room: unknown): room is string {
  return (
    typeof room === 'string' &&
    room.length > 0 &&
    room.length <= WebSocketLimits.MAX_ROOM_NAME_LENGTH &&
    !room.startsWith(WebSocketLimits.RESERVED_ROOM_PREFIX)
  );
}

/** Keeps the valid, distinct names of a requested list, in request order. */
export function sanitizeRoomList(rooms: readonly unknown[]): string[] {
  const kept = new Set<string>();
  for (const room of rooms) {
    if (isValidRoomName(room)) kept.add(room);
  }
  return [...kept];
}

/** The internal topics that carry a presence room's join/leave events (`ws:presence-events:<room>`). */
export const PRESENCE_EVENTS_PREFIX = 'ws:presence-events:';

/**
 * A room envelope's target as the bus accepts it from Redis: a room name (a client id is one),
 * or a presence room's event topic. Anything else under `ws:` is an internal topic (the
 * broadcast topic, …) that no message from Redis may reach.
 */
export function isBusRoomTarget(target: string): boolean {
  if (isValidRoomName(target as unknown)) return true;
  return (
    target.startsWith(PRESENCE_EVENTS_PREFIX) && isValidRoomName(target.slice(PRESENCE_EVENTS_PREFIX.length))
  );
}
