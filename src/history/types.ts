/** What `historyFn` answers for a room that keeps history. */
export interface IHistoryPolicy {
  /** Most publications kept (a positive integer, at most `WebSocketLimits.MAX_HISTORY_SIZE`). */
  size: number;
  /** Milliseconds a publication is kept. */
  ttl: number;
  /**
   * Milliseconds the room's position (offset + epoch) outlives its last publication.
   * Default `WebSocketHistoryDefaults.META_TTL` (24 h); never less than `ttl`.
   */
  metaTtl?: number;
}

/** Decides which rooms keep history. Synchronous; null/undefined: the room keeps none. */
export type THistoryFn = (opts: { room: string }) => IHistoryPolicy | null | undefined;

/** A policy after validation, with `metaTtl` filled in. */
export interface IResolvedHistoryPolicy {
  size: number;
  ttl: number;
  metaTtl: number;
}

/** Where a room's stream stands: the last offset given (0 before the first) and its epoch. */
export interface IStreamPosition {
  offset: number;
  epoch: string;
}

/** A retained publication as the API returns it. */
export interface IPublication {
  offset: number;
  event: string;
  data: unknown;
}

/** A retained publication as stored: the payload stays serialized. */
export interface IStoredPublication {
  offset: number;
  event: string;
  /** The payload's JSON, or undefined when it had none. */
  dataJson: string | undefined;
}

export interface IHistoryQuery {
  /** Only publications after this position; its epoch must be the room's. */
  since?: IStreamPosition;
  /** Most publications returned. */
  limit: number;
  /** Newest first (default oldest first). */
  reverse: boolean;
}

/** The answer to a read: the room's current position and the publications asked for. */
export interface IHistoryPage extends IStreamPosition {
  publications: IStoredPublication[];
  /**
   * False when `since` could not be served: another epoch, an offset past the current one, or
   * publications after it no longer all retained. `publications` is then empty.
   */
  retained: boolean;
}

/** What both stores answer to. */
export interface IHistoryStore {
  read(room: string, policy: IResolvedHistoryPolicy, query: IHistoryQuery): Promise<IHistoryPage>;
  remove(room: string): Promise<void>;
}
