/** One connection in a presence room, as `presence()` returns it. */
export interface IPresenceMember {
  clientId: string;
  userId?: string;
  /** What `presenceInfoFn` chose to expose of the client (absent without it). */
  info?: unknown;
}

/** Counts of a presence room: connections, and distinct user ids among them. */
export interface IPresenceStats {
  clients: number;
  users: number;
}

/** Which rooms keep presence: called once per (client, room) join; only `true` turns it on. */
export type TPresenceFn = (opts: { room: string }) => boolean;

/** The part of a client exposed in presence (keep secrets out: every member of the room can read it). */
export type TPresenceInfoFn<MetadataType extends object = Record<string, unknown>> = (opts: {
  clientId: string;
  userId?: string;
  metadata?: MetadataType;
  room: string;
}) => unknown;

/** A join/leave event encoded for Pub/Sub, handed to the store so it goes out with the write. */
export interface IPresenceEvent {
  channel: string;
  message: string;
}

/**
 * Where presence lives: in memory (one instance) or in Redis (every instance). `add` and
 * `remove` resolve to whether they changed anything, so each change is announced exactly once.
 */
export interface IPresenceStore {
  /** Starts the instance's liveness heartbeat (Redis) and waits for the first beat. */
  start(): Promise<void>;
  /**
   * `event`, when given, is published to the other instances if and only if the call changed
   * something (the in-memory store has no other instances and ignores it).
   */
  add(room: string, member: IPresenceMember, event?: IPresenceEvent): Promise<boolean>;
  remove(room: string, clientId: string, event?: IPresenceEvent): Promise<boolean>;
  /**
   * This instance has (true) or no longer has (false) local subscribers to the room's events.
   * Redis: events are published only for rooms some instance watches; resolves once stored.
   */
  watch?(room: string, on: boolean): Promise<void>;
  /** Writes the watches again (every heartbeat): a Redis that lost them, or missed one, has them back. */
  rewatch?(rooms: readonly string[]): Promise<void>;
  /**
   * Renews this instance's liveness (every heartbeat). True: its registration was gone or had
   * expired (swept while paused, Redis lost it), or a write failed since; the caller then calls
   * `reregister` with every local member. Absent: nothing can be lost (memory).
   */
  renew?(): Promise<boolean>;
  /**
   * Writes every local member again, under a new registration, with the watches; `added(n)` for
   * each whose entry was missing (announced as a join by the caller).
   */
  reregister?(
    members: ReadonlyArray<{ room: string; member: IPresenceMember }>,
    watched: readonly string[],
    added: (index: number) => void,
  ): Promise<void>;
  /** Every live member, on every instance. */
  list(room: string): Promise<IPresenceMember[]>;
  /**
   * Removes the members of instances whose liveness expired, calling `gone` once per member
   * removed (by whichever instance removed it: exactly one). Does not renew (see `renew`).
   */
  sweep(gone: (room: string, member: IPresenceMember) => void): Promise<void>;
  /** Stops the heartbeat and removes this instance's liveness (its members are removed one by one before). */
  stop(): Promise<void>;
}

export function presenceStats(members: readonly IPresenceMember[]): IPresenceStats {
  const users = new Set<string>();
  for (const member of members) if (member.userId !== undefined) users.add(member.userId);
  return { clients: members.length, users: users.size };
}
