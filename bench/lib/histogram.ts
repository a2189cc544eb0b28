// A fixed-bucket latency histogram: 10 µs buckets up to 200 ms (or wider ones), plus an exact
// maximum. Cheap to record into and to merge across client processes.

const BUCKET_MS = 0.01;
const BUCKETS = 20_000;

export interface IHistogramSnapshot {
  /** [bucket, count] pairs for the non-empty buckets. */
  buckets: Array<[number, number]>;
  count: number;
  maxMs: number;
  sumMs: number;
  /** Bucket width, when not the default 10 µs. */
  bucketMs?: number;
}

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS + 1);
  count = 0;
  maxMs = 0;
  sumMs = 0;

  /** Wider buckets (e.g. 0.1 ms, up to 2 s) for latencies past 200 ms. */
  constructor(private readonly bucketMs = BUCKET_MS) {}

  record(ms: number): void {
    const value = Math.max(ms, 0);
    const bucket = Math.min(BUCKETS, Math.floor(value / this.bucketMs));
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
    this.count++;
    this.sumMs += value;
    if (value > this.maxMs) this.maxMs = value;
  }

  snapshot(): IHistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i <= BUCKETS; i++) {
      const n = this.counts[i] ?? 0;
      if (n > 0) buckets.push([i, n]);
    }
    const snap: IHistogramSnapshot = { buckets, count: this.count, maxMs: this.maxMs, sumMs: this.sumMs };
    if (this.bucketMs !== BUCKET_MS) snap.bucketMs = this.bucketMs;
    return snap;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxMs = 0;
    this.sumMs = 0;
  }
}

export interface ILatencySummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Merges snapshots and reads the percentiles (each reported as its bucket's upper edge). */
export function summarize(snapshots: IHistogramSnapshot[]): ILatencySummary {
  const merged = new Map<number, number>();
  let count = 0;
  let maxMs = 0;
  let sumMs = 0;
  const bucketMs = snapshots[0]?.bucketMs ?? BUCKET_MS;
  for (const snap of snapshots) {
    for (const [bucket, n] of snap.buckets) merged.set(bucket, (merged.get(bucket) ?? 0) + n);
    count += snap.count;
    sumMs += snap.sumMs;
    maxMs = Math.max(maxMs, snap.maxMs);
  }
  const ordered = [...merged.entries()].sort((a, b) => a[0] - b[0]);
  const at = (q: number): number => {
    const rank = Math.ceil(q * count);
    let seen = 0;
    for (const [bucket, n] of ordered) {
      seen += n;
      if (seen >= rank) return Math.min((bucket + 1) * bucketMs, maxMs);
    }
    return maxMs;
  };
  return {
    samples: count,
    p50Ms: count ? at(0.5) : 0,
    p99Ms: count ? at(0.99) : 0,
    maxMs,
    meanMs: count ? sumMs / count : 0,
  };
}
