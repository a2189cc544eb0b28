// Drain: before an instance goes away, its clients are asked to reconnect
// elsewhere, a few at a time, so the instances that stay are not hit by all of
// them in the same instant (the SDK's reconnect jitter spreads them further).

/** How `shutdown()` lets clients go. */
export interface IShutdownOptions {
  /**
   * Spread the clients' closes evenly over this many milliseconds, with
   * `drainCloseCode`, while still delivering to those not yet closed. `0` (the
   * default) closes everyone at once with 1001, as before.
   */
  drainWindow?: number;
  /** Close code of a drain. Default 1012 (Service Restart: "reconnect, maybe elsewhere"). */
  drainCloseCode?: number;
  /** Close reason of a drain. Default `'Server restarting: reconnect'`. */
  drainReason?: string;
}

export interface IResolvedDrain {
  window: number;
  code: number;
  reason: string;
}

/** How often a batch of closes goes out during a drain. */
export const DRAIN_TICK_MS = 50;

export function resolveDrain(opts: IShutdownOptions | undefined, defaultCode: number): IResolvedDrain {
  const window = opts?.drainWindow ?? 0;
  if (typeof window !== 'number' || !Number.isFinite(window) || window < 0) {
    throw new Error(`[WebSocketServerHelper] drainWindow must be a number >= 0, got ${String(window)}`);
  }
  const code = opts?.drainCloseCode ?? defaultCode;
  // 1000 and 3000-4999 may be sent by an application; 1012 is the standard "restarting" code.
  if (
    !Number.isInteger(code) ||
    !(code === 1000 || code === 1001 || code === 1012 || (code >= 3000 && code <= 4999))
  ) {
    throw new Error(
      `[WebSocketServerHelper] drainCloseCode must be 1000, 1001, 1012 or 3000-4999, got ${String(code)}`,
    );
  }
  return { window, code, reason: opts?.drainReason ?? 'Server restarting: reconnect' };
}

/**
 * Calls `close` on every item in equal batches, one batch every `DRAIN_TICK_MS`,
 * spread over `windowMs`; resolves when the window is over (even if the items
 * ran out earlier: a drain lasts its whole window, so load balancers have time
 * to see the instance as not ready while it refuses new connections).
 */
export async function closeGradually<T>(
  items: readonly T[],
  windowMs: number,
  close: (item: T) => void,
): Promise<void> {
  const ticks = Math.max(1, Math.floor(windowMs / DRAIN_TICK_MS));
  let next = 0;
  for (let tick = 0; tick < ticks; tick++) {
    if (tick > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    const until = Math.ceil(((tick + 1) * items.length) / ticks);
    for (; next < until; next++) close(items[next] as T);
  }
}
