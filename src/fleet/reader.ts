import { WebSocketLimits } from '../common/constants.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { isPlainObject, jsonDepthExceeds, parseJsonObject } from '../utils/json.ts';
import { FLEET_INDEX_KEY, fleetInstanceKey } from './keys.ts';
import { FLEET_MAX_TOP_ROOMS } from './options.ts';
import { mergeRooms } from './top-rooms.ts';
import type { IFleetInstance, IFleetRates, IFleetRoom } from './types.ts';

/** Most instances one listing returns. */
export const FLEET_MAX_INSTANCES = 1_000;
/** A record larger than this (bytes of JSON) is skipped as not one of ours. */
const MAX_RECORD_CHARS = 64 * 1024;

/**
 * The live instances, read from Redis without a scan: the sorted set's unexpired ids (at most
 * `limit`, default and maximum `FLEET_MAX_INSTANCES`), then their records in one MGET (one slot).
 * Expired ids are pruned first. A record that is missing (it ran out between the two reads) or
 * malformed is left out. Sorted by identifier, then id.
 */
export async function readFleet(
  client: TRedisClient,
  limit = FLEET_MAX_INSTANCES,
): Promise<IFleetInstance[]> {
  const count = Math.max(0, Math.min(Math.floor(limit), FLEET_MAX_INSTANCES));
  if (count === 0) return [];
  const now = Date.now();
  await client.zremrangebyscore(FLEET_INDEX_KEY, '-inf', now);
  const ids = await client.zrangebyscore(FLEET_INDEX_KEY, now, '+inf', 'LIMIT', 0, count);
  if (ids.length === 0) return [];
  const raws = await client.mget(...ids.map(fleetInstanceKey));
  const instances: IFleetInstance[] = [];
  for (const [n, raw] of raws.entries()) {
    const record = raw === null ? undefined : decodeFleetRecord(raw);
    if (record && record.id === ids[n] && record.expiresAt > now) instances.push(record);
  }
  instances.sort((a, b) =>
    a.identifier === b.identifier ? (a.id < b.id ? -1 : 1) : a.identifier < b.identifier ? -1 : 1,
  );
  return instances;
}

/**
 * The rooms with the most members over the fleet: each instance's announced largest rooms,
 * summed. A room counts only on the instances where it is among their `topRooms` largest, so
 * the figure is a lower bound (exact when every instance announces it).
 */
export function fleetTopRooms(instances: readonly IFleetInstance[], n: number): IFleetRoom[] {
  return mergeRooms(
    instances.map((instance) => instance.topRooms),
    n,
  );
}

/** A record as read from Redis, checked field by field; undefined when it is not one. */
export function decodeFleetRecord(raw: string): IFleetInstance | undefined {
  if (raw.length > MAX_RECORD_CHARS || jsonDepthExceeds(raw, WebSocketLimits.MAX_BUS_JSON_DEPTH))
    return undefined;
  const p = parseJsonObject(raw);
  if (!p) return undefined;
  const str = (v: unknown): v is string => typeof v === 'string';
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!str(p.id) || !str(p.identifier) || !str(p.version)) return undefined;
  if (![p.startedAt, p.updatedAt, p.expiresAt, p.connections, p.authenticated, p.users, p.rooms].every(num)) {
    return undefined;
  }
  const r = p.rates;
  if (!isPlainObject(r) || ![r.inboundFrames, r.publishes, r.socketWrites, r.connectionsOpened].every(num)) {
    return undefined;
  }
  if (!Array.isArray(p.topRooms) || p.topRooms.length > FLEET_MAX_TOP_ROOMS) return undefined;
  const topRooms: IFleetRoom[] = [];
  for (const entry of p.topRooms) {
    if (!isPlainObject(entry) || !str(entry.room) || !num(entry.members)) return undefined;
    topRooms.push({ room: entry.room, members: entry.members });
  }
  const rates: IFleetRates = {
    inboundFrames: r.inboundFrames as number,
    publishes: r.publishes as number,
    socketWrites: r.socketWrites as number,
    connectionsOpened: r.connectionsOpened as number,
  };
  return {
    id: p.id,
    identifier: p.identifier,
    version: p.version,
    startedAt: p.startedAt as number,
    updatedAt: p.updatedAt as number,
    expiresAt: p.expiresAt as number,
    connections: p.connections as number,
    authenticated: p.authenticated as number,
    users: p.users as number,
    rooms: p.rooms as number,
    rates,
    topRooms,
    draining: p.draining === true,
  };
}
