import { epochSource } from './policy.ts';
import type {
  IHistoryPage,
  IHistoryQuery,
  IHistoryStore,
  IResolvedHistoryPolicy,
  IStoredPublication,
  IStreamPosition,
} from './types.ts';

interface IEntry extends IStoredPublication {
  at: number;
}

interface IRoomStream {
  epoch: string;
  top: number;
  /** Retained entries are `entries[start..]`, in offset order, contiguous. */
  entries: IEntry[];
  start: number;
  /** Time of the last publication or read: the position is forgotten `metaTtl` after it. */
  touched: number;
  metaTtl: number;
  /** When the first publication created it (an empty position taken before may name it, see readNow). */
  created: number;
}

/** How often idle rooms are swept out. */
const SWEEP_INTERVAL = 60_000;

/**
 * Single-instance history: a bounded list per room, trimmed by `size` and `ttl`. The epoch is
 * random per room stream, so after a process restart (or once an idle room was forgotten) an old
 * position never matches. Everything is synchronous: a publication gets its offset at once.
 */
export class MemoryHistoryStore implements IHistoryStore {
  private readonly rooms = new Map<string, IRoomStream>();
  private readonly newEpoch = epochSource();
  /** Named by empty positions; a new one after `remove()` (and in every process). */
  private generation = this.newEpoch();
  private sweeper?: ReturnType<typeof setInterval>;

  constructor(private readonly now: () => number = Date.now) {}

  append(
    room: string,
    policy: IResolvedHistoryPolicy,
    event: string,
    dataJson: string | undefined,
  ): IStreamPosition {
    const stream = this.streamOf(room, policy, true)!;
    const offset = ++stream.top;
    stream.entries.push({ offset, event, dataJson, at: stream.touched });
    this.trim(stream, policy);
    return { offset, epoch: stream.epoch };
  }

  /**
   * A room that was never published to (or was forgotten) is not created by a read: it answers
   * the empty position `{ offset: 0, epoch: '~<generation>.<ms>' }`, which stays valid as offset 0
   * of the room's first stream under the rule of the Redis store (redis-scripts.ts).
   */
  readNow(room: string, policy: IResolvedHistoryPolicy, query: IHistoryQuery): IHistoryPage {
    const now = this.now();
    const emptyAt = this.emptyAt(query.since);
    const stream = this.streamOf(room, policy, false);
    if (!stream) {
      const retained =
        !query.since || (emptyAt !== undefined && emptyAt <= now && now - emptyAt < policy.metaTtl);
      return { offset: 0, epoch: `~${this.generation}.${now}`, publications: [], retained };
    }
    this.trim(stream, policy);
    const { top, epoch, entries, start } = stream;
    const page: IHistoryPage = { offset: top, epoch, publications: [], retained: true };
    let from = start; // index of the first publication that may be returned
    let since = query.since;
    if (emptyAt !== undefined && stream.created >= emptyAt && stream.created - emptyAt < policy.metaTtl) {
      since = { offset: 0, epoch };
    }
    if (since) {
      const oldest = start < entries.length ? entries[start]!.offset : top + 1;
      if (since.epoch !== epoch || since.offset > top || (since.offset < top && oldest > since.offset + 1)) {
        page.retained = false;
        return page;
      }
      from = start + (since.offset + 1 - oldest);
    }
    const count = Math.min(query.limit, entries.length - from);
    if (count <= 0) return page;
    page.publications = query.reverse
      ? entries.slice(entries.length - count).reverse()
      : entries.slice(from, from + count);
    return page;
  }

  read(room: string, policy: IResolvedHistoryPolicy, query: IHistoryQuery): Promise<IHistoryPage> {
    return Promise.resolve(this.readNow(room, policy, query));
  }

  async remove(room: string): Promise<void> {
    this.rooms.delete(room);
    this.generation = this.newEpoch();
  }

  /** The time named by an empty position of the current generation, else undefined. */
  private emptyAt(since: IStreamPosition | undefined): number | undefined {
    if (since?.offset !== 0) return undefined;
    const prefix = `~${this.generation}.`;
    if (!since.epoch.startsWith(prefix)) return undefined;
    const at = since.epoch.slice(prefix.length);
    return /^\d{1,16}$/.test(at) ? Number(at) : undefined;
  }

  /** Number of rooms with a kept position (for tests and stats). */
  get size(): number {
    return this.rooms.size;
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.rooms.clear();
  }

  /** The room's stream; created only when `create` (a publication), else undefined when there is none. */
  private streamOf(room: string, policy: IResolvedHistoryPolicy, create: boolean): IRoomStream | undefined {
    const now = this.now();
    let stream = this.rooms.get(room);
    if (stream && now - stream.touched > stream.metaTtl) {
      stream = undefined; // forgotten: new epoch
      this.rooms.delete(room);
    }
    if (!stream) {
      if (!create) return undefined;
      stream = {
        epoch: this.newEpoch(),
        top: 0,
        entries: [],
        start: 0,
        touched: now,
        metaTtl: policy.metaTtl,
        created: now,
      };
      this.rooms.set(room, stream);
      this.startSweeper();
    }
    stream.touched = now;
    stream.metaTtl = policy.metaTtl;
    return stream;
  }

  private trim(stream: IRoomStream, policy: IResolvedHistoryPolicy): void {
    const { entries } = stream;
    const minAt = stream.touched - policy.ttl;
    let start = Math.max(stream.start, entries.length - policy.size);
    while (start < entries.length && entries[start]!.at < minAt) start++;
    // Compact once the dropped head is most of the array: amortized O(1) per publication.
    if (start > 64 && start * 2 > entries.length) {
      stream.entries = entries.slice(start);
      start = 0;
    }
    stream.start = start;
  }

  /** Forgets rooms idle for longer than their `metaTtl`, so memory follows the active rooms. */
  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = this.now();
      for (const [room, stream] of this.rooms) {
        if (now - stream.touched > stream.metaTtl) this.rooms.delete(room);
      }
      if (this.rooms.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, SWEEP_INTERVAL);
    this.sweeper.unref?.();
  }
}
