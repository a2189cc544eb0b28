// Options of sealed rooms (room keys): one AES-256-GCM key per room and generation, handed to each
// encrypted member through its own session, so a room message is encrypted once and fanned out natively.

/** Server option `roomKeys`: which rooms are sealed and when their key is replaced. */
export interface IRoomKeysOptions {
  /**
   * Which rooms are sealed. Called once per room name (the answer is cached, so it must not change
   * for a name). Only clients with per-client encryption may join a sealed room.
   */
  rooms: (room: string) => boolean;
  /**
   * Milliseconds after which a room's key is replaced by a new generation even when nobody left.
   * Default `0`: only on a leave or removal (and on a join with `rotateOnJoin`).
   */
  rotateInterval?: number;
  /**
   * A new generation on every join too, so a joiner cannot open room frames sealed before it
   * joined, even recorded ones. Costs one encryption per member per join. Default `false`: a joiner
   * gets the current generation's key.
   */
  rotateOnJoin?: boolean;
}

/** Protocol events of sealed rooms. */
export const RoomKeyEvents = {
  /** A room message sealed under the room's key: `{ room, gen, iv, ct }`, in clear on the socket. */
  SEALED: 'ws:sealed',
  /** A generation's key for one member, always inside its `encrypted` frame: `{ room, gen, key }`. */
  KEY: 'ws:room-key',
} as const;
