import type { ILogger } from '../common/types.ts';

/** The part of an ioredis subscriber connection the subscriptions use. */
export interface ISubscriberConnection {
  readonly status: string;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
}

/** At most this many channels per SUBSCRIBE / UNSUBSCRIBE command. */
export const SUBSCRIBE_BATCH = 1_000;

/** State bits of a channel's entry; the holder count is the rest (`value >>> STATE_BITS`). */
const SENT = 1; // the last command sent for it on the current connection was SUBSCRIBE
const ACKED = 2; // Redis acknowledged that SUBSCRIBE
const CHANGED = 4; // its count went to or from zero this turn (it is in `changed`)
const STATE_BITS = 3;
const ONE = 1 << STATE_BITS;

/**
 * One SUBSCRIBE round (a flush's or a restore's batches). Waiters share its one promise, made
 * only when someone waits. It settles when every batch was acknowledged; a round that failed or
 * belongs to an older connection settles with the next restore instead.
 */
interface IRound {
  pending: number;
  failed: boolean;
  generation: number;
  promise?: Promise<void>;
  resolve?: () => void;
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
 *
 * Memory: one Map entry per channel, its count and state bits in one small integer (a Set entry
 * costs about as much as a Map entry here, see docs/scaling.md), and one promise per round of
 * SUBSCRIBEs, not one per waiting channel.
 */
export class ChannelSubscriptions {
  /** Channel → holders × ONE + state bits. Kept at zero holders while SENT or CHANGED. */
  private readonly entries = new Map<string, number>();
  private held = 0;
  /** Channels whose count went to or from zero since the last flush. */
  private changed: string[] = [];
  private scheduled = false;
  /** Bumped on every restore: acknowledgements of an older connection are ignored. */
  private generation = 0;
  /** The round the next flush sends, once someone waits for it. */
  private next?: IRound;
  /** Rounds sent and not yet settled: a channel sent and not acknowledged is in one of them. */
  private readonly open = new Set<IRound>();
  /** Rounds that failed: they settle with the next restore's round. */
  private parked: IRound[] = [];
  /** The latest restore's round (older connections' rounds settle with it). */
  private restoring?: IRound;
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
    return this.held;
  }

  /** Whether `channel` is held and acknowledged (tests, stats). */
  isSubscribed(channel: string): boolean {
    return ((this.entries.get(channel) ?? 0) & ACKED) !== 0;
  }

  acquire(channel: string): void {
    const value = this.entries.get(channel) ?? 0;
    if (value < ONE) {
      this.held++;
      this.entries.set(channel, this.touch(channel, value) + ONE);
    } else this.entries.set(channel, value + ONE);
  }

  release(channel: string): void {
    const value = this.entries.get(channel);
    if (value === undefined || value < ONE) return;
    if (value >= 2 * ONE) {
      this.entries.set(channel, value - ONE);
      return;
    }
    this.held--;
    this.entries.set(channel, this.touch(channel, value) - ONE);
  }

  /**
   * Resolves once every held channel of `channels` is acknowledged; undefined when they all
   * already are (the common case costs no promise). A channel not held is not waited for. A
   * channel still to be sent waits for the next flush's round; one sent and not yet acknowledged
   * waits for the rounds in flight (all of them: a superset, and they answer within a round trip).
   */
  whenSubscribed(channels: Iterable<string>): Promise<void> | undefined {
    let unsent = false;
    let inFlight = false;
    for (const channel of channels) {
      const value = this.entries.get(channel) ?? 0;
      if (value < ONE || value & ACKED) continue;
      if (value & SENT) inFlight = true;
      else unsent = true;
    }
    if (!unsent && !inFlight) return undefined;
    const rounds = inFlight ? [...this.open, ...this.parked] : [];
    if (unsent) {
      this.next ??= this.newRound();
      rounds.push(this.next);
    }
    return rounds.length === 1
      ? promiseOf(rounds[0] as IRound)
      : Promise.all(rounds.map(promiseOf)).then(noop);
  }

  /** On every `ready` of the connection: subscribe everything wanted on the fresh connection. */
  restore(): Promise<void> {
    this.generation++;
    this.changed = [];
    const wanted = [...this.fixed];
    for (const [channel, value] of this.entries) {
      if (value < ONE) this.entries.delete(channel);
      else {
        this.entries.set(channel, value & ~(SENT | ACKED | CHANGED));
        wanted.push(channel);
      }
    }
    // Whoever waited for the next flush or a failed round is answered by this one.
    const round = this.next ?? this.newRound();
    this.next = undefined;
    const followers = this.parked;
    this.parked = [];
    this.restoring = round;
    const answer = this.send('subscribe', wanted, round);
    for (const follower of followers) void promiseOf(round).then(() => this.settle(follower));
    return answer;
  }

  /** Forgets everything (the bus stops); pending waiters are released. */
  clear(): void {
    this.entries.clear();
    this.held = 0;
    this.changed = [];
    for (const round of [...this.open, ...this.parked]) this.settle(round);
    if (this.next) this.settle(this.next);
    this.next = undefined;
    this.parked = [];
  }

  /** Marks a channel whose count goes to or from zero as changed; returns its new state bits. */
  private touch(channel: string, value: number): number {
    if (value & CHANGED) return value;
    this.changed.push(channel);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return value | CHANGED;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const changed = this.changed;
    this.changed = [];
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    for (const channel of changed) {
      const value = this.entries.get(channel);
      if (value === undefined) continue;
      const state = value & ~CHANGED;
      const wanted = state >= ONE;
      if (wanted && !(state & SENT)) subscribe.push(channel);
      else if (!wanted && state & SENT) unsubscribe.push(channel);
      if (!wanted && !(state & SENT)) this.entries.delete(channel);
      else this.entries.set(channel, state);
    }
    const round = this.next ?? this.newRound();
    this.next = undefined;
    // Down: the restore on the next `ready` subscribes whatever is wanted then.
    if (this.connection()?.status !== 'ready') {
      this.park(round);
      return;
    }
    // Failures are logged in send(); the restore after a reconnect repairs them.
    this.send('subscribe', subscribe, round).catch(noop);
    this.send('unsubscribe', unsubscribe).catch(noop);
  };

  /** Resolves when every batch was answered (rejects when one failed). */
  private send(command: 'subscribe' | 'unsubscribe', channels: string[], round?: IRound): Promise<void> {
    const connection = this.connection();
    if (!connection) {
      if (round) this.park(round);
      return Promise.resolve();
    }
    if (round) {
      round.generation = this.generation;
      this.open.add(round);
    }
    const answers: Promise<unknown>[] = [];
    for (const batch of this.batches(channels)) {
      for (const channel of batch) this.mark(command, channel);
      const answer = connection[command](...batch);
      answers.push(answer);
      if (round) round.pending++;
      answer.then(
        () => {
          if (round) this.answered(round, batch);
        },
        (error: unknown) => {
          // The connection went down: the restore after it comes back re-sends the wanted set.
          this.logger.warn(
            `Redis ${command.toUpperCase()} of ${batch.length} channel(s) failed`,
            error instanceof Error ? error.message : String(error),
          );
          if (round) {
            round.failed = true;
            this.answered(round);
          }
        },
      );
    }
    if (round?.pending === 0) this.finish(round);
    return Promise.all(answers).then(noop);
  }

  /** Records a channel as sent (SUBSCRIBE) or no longer subscribed (UNSUBSCRIBE). */
  private mark(command: 'subscribe' | 'unsubscribe', channel: string): void {
    const value = this.entries.get(channel);
    if (value === undefined) return; // a fixed channel
    if (command === 'subscribe') this.entries.set(channel, value | SENT);
    else if (value < ONE && !(value & CHANGED)) this.entries.delete(channel);
    else this.entries.set(channel, value & ~(SENT | ACKED));
  }

  /** A batch of `round` was answered (`batch`: acknowledged channels, absent on failure). */
  private answered(round: IRound, batch?: string[]): void {
    if (batch && round.generation === this.generation) {
      for (const channel of batch) {
        const value = this.entries.get(channel);
        // Not SENT any more: unsubscribed meanwhile.
        if (value !== undefined && value & SENT) this.entries.set(channel, value | ACKED);
      }
    }
    if (--round.pending === 0) this.finish(round);
  }

  /** Every batch of `round` was answered: it settles now, or with a restore. */
  private finish(round: IRound): void {
    if (!round.failed && round.generation === this.generation) {
      this.settle(round);
      return;
    }
    this.open.delete(round);
    if (round.generation === this.generation) this.parked.push(round);
    else if (this.restoring) void promiseOf(this.restoring).then(() => this.settle(round));
    else this.settle(round);
  }

  private park(round: IRound): void {
    this.open.delete(round);
    this.parked.push(round);
  }

  private newRound(): IRound {
    return { pending: 0, failed: false, generation: this.generation };
  }

  private settle(round: IRound): void {
    this.open.delete(round);
    round.pending = -1;
    round.resolve?.();
  }

  /** At most SUBSCRIBE_BATCH channels each, and (with `slotOf`) of one slot each. */
  private *batches(channels: string[]): Generator<string[]> {
    const slotOf = this.slotOf;
    const groups = slotOf ? groupBy(channels, slotOf) : [channels];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += SUBSCRIBE_BATCH) yield group.slice(i, i + SUBSCRIBE_BATCH);
    }
  }
}

function noop(): void {}

/** The round's shared promise (made on first use; already resolved for a settled round). */
function promiseOf(round: IRound): Promise<void> {
  if (!round.promise) {
    if (round.pending < 0) return Promise.resolve();
    round.promise = new Promise<void>((resolve) => {
      round.resolve = resolve;
    });
  }
  return round.promise;
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
