/**
 * Per-IP connection rate: a token bucket per client address, so one address
 * opening sockets in a loop is refused (HTTP 429) before a WebSocket exists,
 * while everyone else connects as usual. Memory is bounded: buckets are kept in
 * least-recently-used order, an address whose bucket has refilled is forgotten
 * (it would start full anyway), and past `maxTrackedIps` the oldest is dropped.
 */

export interface IConnectionRateOptions {
  /** Sustained upgrades per second from one address. Default 20. */
  perSecond?: number;
  /** Upgrades one address may make at once above the rate. Default 100. */
  burst?: number;
  /** Addresses tracked at most; the least recently seen is forgotten beyond it. Default 10 000. */
  maxTrackedIps?: number;
}

export const DEFAULT_CONNECTION_RATE: Readonly<Required<IConnectionRateOptions>> = Object.freeze({
  perSecond: 20,
  burst: 100,
  maxTrackedIps: 10_000,
});

interface IBucket {
  tokens: number;
  /** `performance.now()` of the last refill. */
  at: number;
}

/** Idle buckets inspected per call: keeps eviction amortized and bounded. */
const EVICTIONS_PER_CALL = 4;

export class ConnectionRateLimiter {
  private readonly buckets = new Map<string, IBucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly maxTracked: number;
  /** Idle time after which a bucket is full again (ms). */
  private readonly refillMs: number;

  constructor(options: IConnectionRateOptions = {}, prefix = '[WebSocketComponent]') {
    const { perSecond, burst, maxTrackedIps } = { ...DEFAULT_CONNECTION_RATE, ...withoutUndefined(options) };
    for (const [name, value, min] of [
      ['perSecond', perSecond, 0],
      ['burst', burst, 1],
      ['maxTrackedIps', maxTrackedIps, 1],
    ] as const) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (min === 0 && value === 0)) {
        throw new Error(
          `${prefix} connectionRate.${name} must be a number ${min === 0 ? '> 0' : `>= ${min}`}, got ${JSON.stringify(value)}`,
        );
      }
    }
    this.perMs = perSecond / 1000;
    this.burst = burst;
    this.maxTracked = Math.floor(maxTrackedIps);
    this.refillMs = burst / this.perMs;
  }

  /** Addresses currently tracked (bounded by `maxTrackedIps`). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `ip`; false when its bucket is empty (the upgrade is refused). */
  allow(ip: string, now: number = performance.now()): boolean {
    const bucket = this.buckets.get(ip);
    let allowed: boolean;
    if (bucket) {
      this.buckets.delete(ip); // re-inserted below: the map stays in least-recently-used order
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
      allowed = bucket.tokens >= 1;
      if (allowed) bucket.tokens -= 1;
      this.buckets.set(ip, bucket);
    } else {
      allowed = true;
      this.buckets.set(ip, { tokens: this.burst - 1, at: now });
    }
    this.evict(now);
    return allowed;
  }

  private evict(now: number): void {
    let inspected = 0;
    for (const [ip, bucket] of this.buckets) {
      const over = this.buckets.size > this.maxTracked;
      if (!over && (inspected++ >= EVICTIONS_PER_CALL || now - bucket.at < this.refillMs)) return;
      this.buckets.delete(ip);
    }
  }
}

/** The `429 Too Many Requests` answer to a refused upgrade. */
export function connectionRateRefusedResponse(retryAfterSeconds = 1): Response {
  return new Response('Too Many Requests', {
    status: 429,
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
