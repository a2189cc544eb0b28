/** Prefix of every presence key. */
export const PRESENCE_KEY_PREFIX = 'ws:presence:';

/** Sorted set: instance id → the time (ms since epoch) its liveness runs out. */
export const PRESENCE_INSTANCES_KEY = `${PRESENCE_KEY_PREFIX}instances`;

/**
 * Hash of a room's members: `ws:presence:{<room>}:members`, field = client id, value = JSON
 * `{ s: instance id, u?: user id, i?: info }`. The braces are a Redis Cluster hash tag (one
 * slot per room); a name with `{` or `}` is tagged by its base64url form behind `~`, as the
 * history keys do, so the two forms never collide.
 */
export function presenceMembersKey(room: string): string {
  return `${PRESENCE_KEY_PREFIX}${roomTag(room)}:members`;
}

/**
 * Hash of the instances with local subscribers to a room's join/leave events:
 * `ws:presence:{<room>}:watchers`, field = instance id. Events are published only while it
 * exists (same slot as the members hash).
 */
export function presenceWatchersKey(room: string): string {
  return `${PRESENCE_KEY_PREFIX}${roomTag(room)}:watchers`;
}

function roomTag(room: string): string {
  return room.includes('{') || room.includes('}')
    ? `~{${Buffer.from(room).toString('base64url')}}`
    : `{${room}}`;
}

/** Set of the rooms an instance has (or had) members in: what a survivor sweeps when it dies. */
export function presenceInstanceRoomsKey(serverId: string): string {
  return `${PRESENCE_KEY_PREFIX}rooms:${serverId}`;
}
