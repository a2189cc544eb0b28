import type { ILogger } from '../common/types.ts';

/** The part of an ioredis subscriber connection the subscriptions use. */
export interface ISubscriberConnection {
  readonly status: string;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
}

/** At most this many channels per SUBSCRIBE / UNSUBSCRIBE command. */
export const SUBSCRIBE_BATCH = 1_000;

interface IWaiter {
  promise: Promise<void>;
  resolve: () => void;
}

/**
 * Reference-counted channel subscriptions on one subscriber connection, for the `rooms`
 * subscription mode. Counts change synchronously; what changed during a turn of the event loop
 * is sent as one SUBSCRIBE and one UNSUBSCRIBE at its end (a channel acquired and released in
 * the same turn costs nothing). `whenSubscribed` resolves once Redis acknowledged the SUBSCRIBE,
 * which is what makes "published after the join reply" reach the joined client.
 *
 * After every (re)connect (`restore()`, on the connection's `ready`), the full wanted set is
 * subscribed again: a new connection has no subscriptions, and ioredis' own resubscribe is off
 * on this connection so it cannot bring back channels released while it was down.
 */
export class ChannelSubscriptions {
  /** Channel → number of holders (local room members, recoveries in progress). */
  private readonly counts = new Map<string, number>();
  /** Channels whose last command sent on the current connection was SUBSCRIBE. */
  private readonly sent = new Set<string>();
  /** Channels Redis acknowledged on the current connection. */
  private readonly acked = new Set<string>();
  private readonly changed = new Set<string>();
  private readonly waiters = new Map<string, IWaiter>();
  private scheduled = false;
  /** Bumped on every restore: acknowledgements of an older connection are ignored. */
  private generation = 0;
  /** Channels always subscribed (the broadcast channel), outside the counts. */
  private readonly fixed: readonly string[];

  /**
   * `slotOf` (sharded Pub/Sub): a command may only name channels of one hash slot, so each batch
   * is split by slot.
   */
  constructor(
    private readonly connection: () => ISubscriberConnection | undefined,
    private readonly logger: ILogger,
    fixed: readonly string[] = [],
    private readonly slotOf?: (channel: string) => number,
  ) {
    this.fixed = fixed;
  }

  /** Number of channels held (for stats and leak tests). */
  get size(): number {
    return this.counts.size;
  }

  /** Whether `channel` is held and acknowledged (tests, stats). */
  isSubscribed(channel: string): boolean {
    return this.acked.has(channel);
  }

  acquire(channel: string): void {
    const count = this.counts.get(channel) ?? 0;
    this.counts.set(channel, count + 1);
    if (count === 0) this.touch(channel);
  }

  release(channel: string): void {
    const count = this.counts.get(channel);
    if (count === undefined) return;
    if (count > 1) {
      this.counts.set(channel, count - 1);
      return;
    }
    this.counts.delete(channel);
    this.touch(channel);
    // Nobody needs it any more: whoever waited for it stops waiting.
    this.settle(channel);
  }

  /**
   * Resolves once every held channel of `channels` is acknowledged; undefined when they all
   * already are (the common case costs no promise). A channel not held is not waited for.
   */
  whenSubscribed(channels: Iterable<string>): Promise<void> | undefined {
    let pending: Promise<void>[] | undefined;
    for (const channel of channels) {
      if (this.acked.has(channel) || !this.counts.has(channel)) continue;
      pending ??= [];
      pending.push(this.waiterFor(channel).promise);
    }
    if (!pending) return undefined;
    return pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined);
  }

  /** On every `ready` of the connection: subscribe everything wanted on the fresh connection. */
  restore(): Promise<void> {
    this.generation++;
    this.sent.clear();
    this.acked.clear();
    this.changed.clear();
    return this.send('subscribe', [...this.fixed, ...this.counts.keys()]);
  }

  /** Forgets everything (the bus stops); pending waiters are released. */
  clear(): void {
    this.counts.clear();
    this.changed.clear();
    this.sent.clear();
    this.acked.clear();
    for (const channel of [...this.waiters.keys()]) this.settle(channel);
  }

  private touch(channel: string): void {
    this.changed.add(channel);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.changed.size === 0) return;
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    for (const channel of this.changed) {
      const wanted = this.counts.has(channel);
      if (wanted && !this.sent.has(channel)) subscribe.push(channel);
      else if (!wanted && this.sent.has(channel)) unsubscribe.push(channel);
    }
    this.changed.clear();
    // Down: the restore on the next `ready` subscribes whatever is wanted then.
    if (this.connection()?.status !== 'ready') return;
    // Failures are logged in send(); the restore after a reconnect repairs them.
    this.send('subscribe', subscribe).catch(() => {});
    this.send('unsubscribe', unsubscribe).catch(() => {});
  };

  /** Resolves when every batch was answered (rejects when one failed). */
  private send(command: 'subscribe' | 'unsubscribe', channels: string[]): Promise<void> {
    const connection = this.connection();
    if (!connection || channels.length === 0) return Promise.resolve();
    const generation = this.generation;
    const answers: Promise<unknown>[] = [];
    for (const batch of this.batches(channels)) {
      for (const channel of batch) {
        if (command === 'subscribe') this.sent.add(channel);
        else {
          this.sent.delete(channel);
          this.acked.delete(channel);
        }
      }
      const answer = connection[command](...batch);
      answers.push(answer);
      answer.then(
        () => {
          if (command === 'subscribe' && generation === this.generation) this.acknowledge(batch);
        },
        (error: unknown) => {
          // The connection went down: the restore after it comes back re-sends the wanted set.
          this.logger.warn(
            `Redis ${command.toUpperCase()} of ${batch.length} channel(s) failed`,
            error instanceof Error ? error.message : String(error),
          );
        },
      );
    }
    return Promise.all(answers).then(() => undefined);
  }

  /** At most SUBSCRIBE_BATCH channels each, and (with `slotOf`) of one slot each. */
  private *batches(channels: string[]): Generator<string[]> {
    const slotOf = this.slotOf;
    const groups = slotOf ? groupBy(channels, slotOf) : [channels];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += SUBSCRIBE_BATCH) yield group.slice(i, i + SUBSCRIBE_BATCH);
    }
  }

  private acknowledge(batch: string[]): void {
    for (const channel of batch) {
      if (!this.sent.has(channel)) continue; // unsubscribed meanwhile
      this.acked.add(channel);
      this.settle(channel);
    }
  }

  private waiterFor(channel: string): IWaiter {
    let waiter = this.waiters.get(channel);
    if (!waiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      waiter = { promise, resolve };
      this.waiters.set(channel, waiter);
    }
    return waiter;
  }

  private settle(channel: string): void {
    const waiter = this.waiters.get(channel);
    if (!waiter) return;
    this.waiters.delete(channel);
    waiter.resolve();
  }
}

function groupBy(channels: string[], key: (channel: string) => number): string[][] {
  const groups = new Map<number, string[]>();
  for (const channel of channels) {
    const k = key(channel);
    const group = groups.get(k);
    if (group) group.push(channel);
    else groups.set(k, [channel]);
  }
  return [...groups.values()];
}
