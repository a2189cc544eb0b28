/** Options of the fleet registry (`fleet` on the server helper). */
export interface IFleetOptions {
  /** How often the instance writes its record, ms. Default 5 000, at least 100. */
  interval?: number;
  /**
   * How long a record outlives its last write, ms: an instance that died leaves every listing
   * within this bound. Default three intervals; more than one interval.
   */
  ttl?: number;
  /** How many of its largest rooms (by local members) an instance announces. Default 10, at most 100. */
  topRooms?: number;
  /** The application's version to announce (default roomcast's own). At most 64 characters. */
  version?: string;
}

/** A room and how many connections are in it (on one instance, or summed over the fleet). */
export interface IFleetRoom {
  room: string;
  members: number;
}

/** Per-second rates over the last interval (since the start for the first record). */
export interface IFleetRates {
  /** Frames received from clients. */
  inboundFrames: number;
  /** Native publishes (one per message to a room, a user's topic or everyone, however many receive it). */
  publishes: number;
  /** Frames written to one socket (replies, direct sends, encrypted deliveries). */
  socketWrites: number;
  /** Sockets opened. */
  connectionsOpened: number;
}

/** What an instance announces about itself. */
export interface IFleetInstance {
  /** The instance's `serverId`. */
  id: string;
  /** The helper's `identifier` option. */
  identifier: string;
  version: string;
  /** When the helper was configured, ms since epoch. */
  startedAt: number;
  /** When this record was written, ms since epoch. */
  updatedAt: number;
  /** When it runs out unless written again, ms since epoch. */
  expiresAt: number;
  /** Open sockets (authenticated or not). */
  connections: number;
  /** Authenticated connections. */
  authenticated: number;
  /** Distinct user ids connected. */
  users: number;
  /** Rooms with at least one local member (clients' own id rooms included). */
  rooms: number;
  rates: IFleetRates;
  /** Its largest rooms by local members (clients' own id rooms left out), largest first. */
  topRooms: IFleetRoom[];
  /** Shutting down (draining or closing). */
  draining: boolean;
}
