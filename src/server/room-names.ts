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
