export { FleetAnnouncer, type IFleetCounters, type IFleetSource } from './announcer.ts';
export { FLEET_INDEX_KEY, fleetInstanceKey } from './keys.ts';
export { resolveFleetOptions } from './options.ts';
export { decodeFleetRecord, FLEET_MAX_INSTANCES, fleetTopRooms, readFleet } from './reader.ts';
export type { IFleetInstance, IFleetOptions, IFleetRates, IFleetRoom } from './types.ts';
export { ROOMCAST_VERSION } from './version.ts';
