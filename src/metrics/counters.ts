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
  /** Closed sockets by close code. */
  readonly closedByCode = new Map<number, number>();

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

  countClose(code: number): void {
    this.closedByCode.set(code, (this.closedByCode.get(code) ?? 0) + 1);
  }

  countRefusal(code: string): void {
    this.refusedByCode.set(code, (this.refusedByCode.get(code) ?? 0) + 1);
  }
}
