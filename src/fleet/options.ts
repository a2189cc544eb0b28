import type { IFleetOptions } from './types.ts';
import { ROOMCAST_VERSION } from './version.ts';

export const FLEET_DEFAULT_INTERVAL = 5_000;
export const FLEET_MIN_INTERVAL = 100;
export const FLEET_DEFAULT_TOP_ROOMS = 10;
export const FLEET_MAX_TOP_ROOMS = 100;
export const FLEET_MAX_VERSION_LENGTH = 64;

export interface IResolvedFleetOptions {
  interval: number;
  ttl: number;
  topRooms: number;
  version: string;
}

/** `fleet` as given (true or options); throws a clear error for a bad value. */
export function resolveFleetOptions(prefix: string, value: true | IFleetOptions): IResolvedFleetOptions {
  const opts: IFleetOptions = value === true ? {} : value;
  if (!opts || typeof opts !== 'object') throw new Error(`${prefix} fleet must be true or an object`);
  const interval = opts.interval ?? FLEET_DEFAULT_INTERVAL;
  if (!Number.isSafeInteger(interval) || interval < FLEET_MIN_INTERVAL) {
    throw new Error(`${prefix} fleet.interval must be an integer of at least ${FLEET_MIN_INTERVAL} ms`);
  }
  const ttl = opts.ttl ?? interval * 3;
  if (!Number.isSafeInteger(ttl) || ttl <= interval) {
    throw new Error(`${prefix} fleet.ttl must be an integer larger than fleet.interval (ms)`);
  }
  const topRooms = opts.topRooms ?? FLEET_DEFAULT_TOP_ROOMS;
  if (!Number.isSafeInteger(topRooms) || topRooms < 0 || topRooms > FLEET_MAX_TOP_ROOMS) {
    throw new Error(`${prefix} fleet.topRooms must be an integer from 0 to ${FLEET_MAX_TOP_ROOMS}`);
  }
  const version = opts.version ?? ROOMCAST_VERSION;
  if (typeof version !== 'string' || version.length === 0 || version.length > FLEET_MAX_VERSION_LENGTH) {
    throw new Error(
      `${prefix} fleet.version must be a string of 1 to ${FLEET_MAX_VERSION_LENGTH} characters`,
    );
  }
  return { interval, ttl, topRooms, version };
}
