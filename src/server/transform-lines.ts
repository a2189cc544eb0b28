import { WebSocketClientStates } from '../common/constants.ts';
import type { AnyRecord, IWebSocketClient, TWebSocketOutboundTransformer } from '../common/types.ts';

type Client<M extends object> = IWebSocketClient<M>;
// biome-ignore lint/suspicious/noExplicitAny: the transformer chooses its own data type
type TTransformer<M extends object> = TWebSocketOutboundTransformer<any, M>;
/** What a transformer call settles to. */
export type TTransformedValue = Awaited<ReturnType<TTransformer<AnyRecord>>>;

/** One message of one fan-out: what every one of its items shares, and the fan-out's window. */
interface IFanout<M extends object> {
  readonly frame: string;
  readonly event: string;
  readonly data: unknown;
  readonly tail: string | undefined;
  /** Its items in target order; `next` is the first one not admitted to the window yet. */
  readonly items: IItem<M>[];
  next: number;
  /** Items admitted whose transformer call has not settled (at most the limit). */
  active: number;
}

/** One message to one client: its place in the client's line. */
interface IItem<M extends object> {
  readonly fanout: IFanout<M>;
  readonly line: Line<M>;
  /** Admitted to its fan-out's window: it may be transformed once the client's earlier items were. */
  admitted: boolean;
  /** Its call settled (or it was dropped); `out` is the frame to write, if any. */
  settled: boolean;
  out: string | undefined;
}

/**
 * One encrypted client's messages waiting for, or in, an asynchronous transformer call, in the
 * order they were sent: `items[head..]` are not written yet, `items[head..started)` were handed to
 * the transformer (in line order), and what settled is written from the head, in order.
 */
class Line<M extends object> {
  items: IItem<M>[] = [];
  head = 0;
  started = 0;
  /** Calls in flight for this client (at most the limit). */
  inFlight = 0;
  /** Queued in `ready` (its next item may start) / in `settledLines` (its head may be written). */
  ready = false;
  dirty = false;

  constructor(readonly client: Client<M>) {}

  get pending(): boolean {
    return this.head < this.items.length;
  }

  /** Drops the written items off the front (the array is replaced once it is empty or half dead). */
  advance(to: number): void {
    this.head = to;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      this.started = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.started -= this.head;
      this.head = 0;
    }
  }
}

export interface ITransformLinesOptions<M extends object> {
  transformer: TTransformer<M>;
  /** Most calls in flight per fan-out and per client (`encryptedBatchLimit`). */
  limit: number;
  /** The frame a settled answer is written as; undefined when it cannot be (logged; never throws). */
  encode: (
    client: Client<M>,
    transformed: TTransformedValue,
    frame: string,
    tail: string | undefined,
  ) => string | undefined;
  /** Writes a client's frames, in order, in one corked write when there are several (never throws). */
  write: (client: Client<M>, frames: string[]) => void;
  /** A call threw or rejected: the message is dropped for that client (never throws). */
  failed: (client: Client<M>, error: unknown) => void;
}

/**
 * The asynchronous side of encrypted delivery: per-client lines of messages for the outbound
 * transformer, and one window per fan-out. A client takes its place in line when a message is sent;
 * its calls start in that order (so a transformer that numbers its frames when called numbers them
 * in send order), up to `limit` of one fan-out and `limit` of one client at once, and may settle in
 * any order: what settled is written from the head of the line, in send order, once per event-loop
 * turn, so answers to one client that settle in the same turn go out in one corked write. No promise
 * is made per message beyond the transformer's own and its `then`, and no window task.
 */
export class TransformLines<M extends object> {
  private readonly lines = new WeakMap<Client<M>, Line<M>>();
  /** Lines whose next item may start, drained by `drain` (so nothing recurses through them). */
  private readonly ready: Line<M>[] = [];
  private draining = false;
  /** Lines with a settled head, written by `flush` at the end of the turn. */
  private settledLines: Line<M>[] = [];
  private flushQueued = false;
  private readonly transformer: TTransformer<M>;
  private readonly limit: number;
  private readonly encode: ITransformLinesOptions<M>['encode'];
  private readonly write: ITransformLinesOptions<M>['write'];
  private readonly failed: ITransformLinesOptions<M>['failed'];

  constructor(opts: ITransformLinesOptions<M>) {
    this.transformer = opts.transformer;
    this.limit = Math.max(1, Math.floor(opts.limit) || 1);
    this.encode = opts.encode;
    this.write = opts.write;
    this.failed = opts.failed;
  }

  /** True when the client has messages not written yet (waiting, in a call, or settled). */
  has(client: Client<M>): boolean {
    return this.lines.get(client)?.pending === true;
  }

  /**
   * Queues one message for `targets[from..]`, each behind its client's earlier messages.
   * `running`, when given, is a transformer call already made for `targets[from - 1]` (whose
   * line was empty): it takes the fan-out's first window slot.
   */
  enqueue(
    targets: readonly Client<M>[],
    from: number,
    frame: string,
    event: string,
    data: unknown,
    tail: string | undefined,
    running?: PromiseLike<TTransformedValue>,
  ): void {
    const fanout: IFanout<M> = { frame, event, data, tail, items: [], next: 0, active: 0 };
    if (running) {
      const line = this.lineOf(targets[from - 1]!);
      const item = this.add(fanout, line);
      item.admitted = true;
      fanout.next = 1;
      fanout.active = 1;
      line.started++;
      line.inFlight++;
      this.await(item, running);
    }
    for (let i = from; i < targets.length; i++) this.add(fanout, this.lineOf(targets[i]!));
    this.admit(fanout);
    this.drain();
  }

  private add(fanout: IFanout<M>, line: Line<M>): IItem<M> {
    const item: IItem<M> = { fanout, line, admitted: false, settled: false, out: undefined };
    fanout.items.push(item);
    line.items.push(item);
    return item;
  }

  private lineOf(client: Client<M>): Line<M> {
    let line = this.lines.get(client);
    if (line === undefined) {
      line = new Line(client);
      this.lines.set(client, line);
    }
    return line;
  }

  private await(item: IItem<M>, answer: PromiseLike<TTransformedValue>): void {
    // Promise.resolve: a native promise as is; any other thenable is adopted in a later job, so a
    // `then` that throws is a rejection here, not an exception at the sender.
    Promise.resolve(answer).then(
      (value) => {
        const { fanout, line } = item;
        this.settle(item, this.encode(line.client, value, fanout.frame, fanout.tail));
        this.drain();
      },
      (error: unknown) => {
        this.failed(item.line.client, error);
        this.settle(item, undefined);
        this.drain();
      },
    );
  }

  /** Admits the fan-out's next items while its window has room; their lines may move on. */
  private admit(fanout: IFanout<M>): void {
    while (fanout.active < this.limit && fanout.next < fanout.items.length) {
      const item = fanout.items[fanout.next++]!;
      item.admitted = true;
      fanout.active++;
      this.markReady(item.line);
    }
  }

  private markReady(line: Line<M>): void {
    if (line.ready || line.inFlight >= this.limit) return;
    if (line.items[line.started]?.admitted !== true) return;
    line.ready = true;
    this.ready.push(line);
  }

  /** A call settled (or an item was dropped): its slots are freed and its line is written at the end of the turn. */
  private settle(item: IItem<M>, out: string | undefined): void {
    item.settled = true;
    item.out = out;
    const { line, fanout } = item;
    line.inFlight--;
    fanout.active--;
    this.admit(fanout);
    this.markReady(line);
    if (!line.dirty) {
      line.dirty = true;
      this.settledLines.push(line);
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(this.flush);
      }
    }
  }

  /** Starts what may start on every ready line; synchronous answers and gone clients settle within the loop. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      // Index loop: lines made ready meanwhile are appended and reached in this same pass.
      for (let i = 0; i < this.ready.length; i++) {
        const line = this.ready[i]!;
        line.ready = false;
        this.start(line);
      }
    } finally {
      for (const line of this.ready) line.ready = false;
      this.ready.length = 0;
      this.draining = false;
    }
  }

  private start(line: Line<M>): void {
    const client = line.client;
    while (line.inFlight < this.limit && line.started < line.items.length) {
      const item = line.items[line.started]!;
      if (!item.admitted) return;
      line.started++;
      line.inFlight++;
      // A client gone meanwhile is not written to: its transformer is not called either.
      if (client.state === WebSocketClientStates.DISCONNECTED) {
        this.settle(item, undefined);
        continue;
      }
      const { fanout } = item;
      let result: ReturnType<TTransformer<M>>;
      try {
        result = this.transformer({ client, event: fanout.event, data: fanout.data, frame: fanout.frame });
      } catch (error) {
        this.failed(client, error);
        this.settle(item, undefined);
        continue;
      }
      if (isPromiseLike(result)) this.await(item, result);
      else this.settle(item, this.encode(client, result, fanout.frame, fanout.tail));
    }
  }

  /** Writes, per line, what settled from its head on, in order. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    const lines = this.settledLines;
    this.settledLines = [];
    for (const line of lines) {
      line.dirty = false;
      let at = line.head;
      const frames: string[] = [];
      for (; at < line.items.length; at++) {
        const item = line.items[at]!;
        if (!item.settled) break;
        if (item.out !== undefined) frames.push(item.out);
      }
      if (at === line.head) continue;
      line.advance(at);
      if (frames.length > 0 && line.client.state !== WebSocketClientStates.DISCONNECTED) {
        this.write(line.client, frames);
      }
    }
  };
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
