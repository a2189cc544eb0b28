import { WebSocketCloseCodes } from '../common/constants.ts';

/**
 * What the server counts as it works. Plain numbers bumped in place (one add per
 * event, per message on the fan-out path, never per recipient of a native
 * publish), read only when someone asks: `getStats()` or a Prometheus scrape.
 * Counting costs the same whether metrics are exported or not, which is next to
 * nothing; only timings (histograms) are recorded solely when metrics are on.
 */
export class ServerCounters {
  /** Sockets opened (before authentication). */
  connectionsOpened = 0;
  /** Closed sockets by close code: a documented one (see `closeCodeLabel`) or `other`. */
  readonly closedByCode = new Map<string, number>();

  authAccepted = 0;
  /** `authenticateFn` returned null/false, or the handshake failed. */
  authRefused = 0;
  /** `authenticateFn` threw or rejected. */
  authErrors = 0;
  /** No `authenticate` in time, or it did not settle in time (4001). */
  authTimeouts = 0;

  inboundFrames = 0;
  inboundBytes = 0;
  /** Frames and requests refused by `limits`, by error code. */
  readonly refusedByCode = new Map<string, number>();

  /** Native `publish()` calls: one per message and instance, however many receive it. */
  nativePublishes = 0;
  /** Frames written to one socket: system replies, direct and user sends, encrypted frames. */
  socketWrites = 0;
  /** Messages handed to the outbound transformer, one per encrypted recipient. */
  encryptedDeliveries = 0;
  /** Authenticated connections right now. */
  authenticated = 0;

  /** A direct write that Bun dropped past `backpressureLimit`. */
  droppedBackpressure = 0;
  /** An outbound transformer failure: that message was not sent to that client. */
  droppedTransformer = 0;
  /** A message for a client that was not admitted yet (not authenticated, or mid-handshake). */
  droppedUnadmitted = 0;

  /** History recoveries on `join` with `since`, by outcome (`TRecoveryOutcome`), one per room. */
  readonly recoveriesByOutcome = new Map<TRecoveryOutcome, number>();
  /** `send()`s to a history room (positioned publications started here). */
  historyPublished = 0;
  /** Signs of a fleet that disagrees on a room's history policy, by kind (`THistoryMismatch`). */
  readonly historyMismatches = new Map<THistoryMismatch, number>();

  /** `ws:refresh` requests the server sent before an expiry. */
  refreshRequested = 0;
  /** Refreshes accepted (the connection keeps going). */
  refreshAccepted = 0;
  /** Refreshes refused, thrown on or naming another user (closed with 4006). */
  refreshFailed = 0;
  /** Expiries reached without an accepted refresh (closed with 4006). */
  refreshExpired = 0;

  /** Upgrade requests refused before a socket existed, by reason (`origin`, `draining`, `rate`). */
  readonly upgradesRefused = new Map<string, number>();

  countClose(code: number): void {
    bump(this.closedByCode, closeCodeLabel(code));
  }

  countRefusal(code: string): void {
    bump(this.refusedByCode, code);
  }

  countRecovery(outcome: TRecoveryOutcome): void {
    bump(this.recoveriesByOutcome, outcome);
  }

  countHistoryMismatch(kind: THistoryMismatch): void {
    bump(this.historyMismatches, kind);
  }

  countUpgradeRefused(reason: string): void {
    bump(this.upgradesRefused, reason);
  }
}

/**
 * How a disagreement on a room's history policy showed: `policy` (this instance's publication
 * replaced another size/ttl/metaTtl stored for the room), `unpositioned` (a publication without a
 * position reached a room kept here), `positioned` (one with a position reached a room this
 * instance's `historyFn` keeps no history for).
 */
export type THistoryMismatch = 'policy' | 'unpositioned' | 'positioned';
export const HISTORY_MISMATCHES: readonly THistoryMismatch[] = ['policy', 'unpositioned', 'positioned'];

/**
 * How one room's recovery ended: `recovered` (every missed publication sent), or not recovered
 * because the position is no longer retained, the live buffer overflowed during the read, or the
 * history could not be read in time (Redis error, barrier failure, timeout).
 */
export type TRecoveryOutcome = 'recovered' | 'not_retained' | 'overflow' | 'unavailable';

/**
 * The codes a close is counted under as themselves: those RFC 6455 registers for use in a close
 * frame or as a status (1000-1003, 1005-1015) and roomcast's own (`WebSocketCloseCodes`). Any other
 * code (a client may close with anything from 3000 to 4999) is counted as `other`, so a client
 * cannot create metric series.
 */
const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set([
  1000,
  1001,
  1002,
  1003,
  1005,
  1006,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
  1015,
  ...Object.values(WebSocketCloseCodes).filter((value): value is number => typeof value === 'number'),
]);

/** The label of a close code in `roomcast_connections_closed_total`: the code, or `other`. */
export function closeCodeLabel(code: number): string {
  return DOCUMENTED_CLOSE_CODES.has(code) ? String(code) : 'other';
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
