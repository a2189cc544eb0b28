/**
 * The fleet registry's keys. Both carry the hash tag `{fleet}`, so on a Redis Cluster they live
 * in one slot and a beat writes them in one MULTI; a reader reads them without a scan.
 */
export const FLEET_KEY_PREFIX = 'ws:fleet:{fleet}:';

/** Sorted set: instance id → the time (ms since epoch) its record runs out. */
export const FLEET_INDEX_KEY = `${FLEET_KEY_PREFIX}instances`;

/** One instance's record: a JSON string (`IFleetInstance`) written with a TTL on every beat. */
export function fleetInstanceKey(serverId: string): string {
  return `${FLEET_KEY_PREFIX}instance:${serverId}`;
}
