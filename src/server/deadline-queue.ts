/** A pending deadline; pass it back to `cancel`. */
export interface IDeadline<T> {
  readonly item: T;
  readonly at: number;
  readonly queue: DeadlineQueue<T>;
  live: boolean;
}

/**
 * Deadlines that all have the same length. Whatever is added later expires
 * later, so the entries stay in expiry order in a plain FIFO and one timer (for
 * the oldest live entry) replaces a timer per connection. Cancelling only marks
 * the entry; dead entries are skipped when they reach the head.
 */
export class DeadlineQueue<T> {
  private entries: IDeadline<T>[] = [];
  private head = 0;
  private live = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ms: number,
    private readonly onExpire: (item: T) => void,
  ) {}

  /** Number of live deadlines. */
  get size(): number {
    return this.live;
  }

  add(item: T): IDeadline<T> {
    const entry: IDeadline<T> = { item, at: performance.now() + this.ms, queue: this, live: true };
    this.entries.push(entry);
    this.live++;
    if (this.timer === undefined) this.schedule(entry.at);
    return entry;
  }

  cancel(entry: IDeadline<T>): void {
    if (!entry.live || entry.queue !== this) return;
    entry.live = false;
    // The last live entry gone: drop the dead ones but keep the timer. Clients
    // usually authenticate one after another, so the queue empties and refills
    // constantly; the timer fires at most once more and finds nothing due.
    if (--this.live === 0) this.reset();
  }

  /** Drops every deadline and the timer, without calling `onExpire`. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.entries.length; i++) this.entries[i]!.live = false;
    this.reset();
    this.live = 0;
  }

  private schedule(at: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - performance.now()));
  }

  private fire(): void {
    this.timer = undefined;
    // Never early: if the timer fired before the head is due, it is simply re-armed.
    const now = performance.now();
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      if (entry.live && entry.at > now) break;
      this.head++;
      if (!entry.live) continue;
      entry.live = false;
      this.live--;
      this.onExpire(entry.item);
    }
    const next = this.firstLive();
    this.compact();
    if (next && this.timer === undefined) this.schedule(next.at);
  }

  /** Skips dead entries at the head; the live one left there, if any. */
  private firstLive(): IDeadline<T> | undefined {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      if (entry.live) return entry;
      this.head++;
    }
    return undefined;
  }

  /**
   * Empties the array in place. A fresh `[]` would hold no element kind yet, and the optimized
   * `add` (inlined into every open and authenticate) leaves its compiled code on the first push into
   * it; the queue empties constantly, so the engine kept recompiling the connect path.
   */
  private reset(): void {
    this.entries.length = 0;
    this.head = 0;
  }

  /** Releases the consumed prefix once it is most of the array. */
  private compact(): void {
    if (this.head === this.entries.length) this.reset();
    else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
