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
  const tag =
    room.includes('{') || room.includes('}') ? `~{${Buffer.from(room).toString('base64url')}}` : `{${room}}`;
  return `${PRESENCE_KEY_PREFIX}${tag}:members`;
}

/** Set of the rooms an instance has (or had) members in: what a survivor sweeps when it dies. */
export function presenceInstanceRoomsKey(serverId: string): string {
  return `${PRESENCE_KEY_PREFIX}rooms:${serverId}`;
}
