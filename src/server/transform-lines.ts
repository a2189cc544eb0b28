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
  /** Items admitted and not finished (at most the window's limit). */
  active: number;
}

/** One message to one client: its place in the client's line. */
interface IItem<M extends object> {
  readonly fanout: IFanout<M>;
  readonly line: Line<M>;
  /** Admitted to its fan-out's window: it may be transformed once it heads its client's line. */
  admitted: boolean;
}

/**
 * One encrypted client's messages waiting for (or in) an asynchronous transformer call, in the
 * order they were sent. One call runs at a time per client; its answer is written as it settles,
 * then the next item that heads the line starts. Kept for the client's lifetime (a WeakMap entry),
 * so the two settle callbacks are made once per client, not once per message.
 */
class Line<M extends object> {
  items: IItem<M>[] = [];
  head = 0;
  /** An item's transformer call is in flight (the head's). */
  running = false;
  /** Queued in `ready` (its head may start). */
  ready = false;
  readonly onValue: (value: TTransformedValue) => void;
  readonly onError: (error: unknown) => void;

  constructor(
    readonly client: Client<M>,
    owner: TransformLines<M>,
  ) {
    this.onValue = (value) => owner.settled(this, value, undefined, false);
    this.onError = (error) => owner.settled(this, undefined, error, true);
  }

  get pending(): boolean {
    return this.head < this.items.length;
  }

  push(item: IItem<M>): void {
    this.items.push(item);
  }

  shift(): void {
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export interface ITransformLinesOptions<M extends object> {
  transformer: TTransformer<M>;
  /** Most items of one fan-out admitted at once (`encryptedBatchLimit`). */
  limit: number;
  /** Writes a settled answer to the client (never throws). */
  write: (client: Client<M>, transformed: TTransformedValue, frame: string, tail: string | undefined) => void;
  /** A call threw or rejected: the message is dropped for that client (never throws). */
  failed: (client: Client<M>, error: unknown) => void;
}

/**
 * The asynchronous side of encrypted delivery: per-client lines of messages waiting for the
 * outbound transformer, and one window per fan-out. Each client's messages are transformed and
 * written in the order they were sent (it takes its place in line when the message is sent, not
 * when a window slot frees up); at most `limit` items of one fan-out are admitted at once. No
 * promise is made per message beyond the transformer's own and its one `then`: no window task,
 * no chain per client, no closure per message.
 */
export class TransformLines<M extends object> {
  private readonly lines = new WeakMap<Client<M>, Line<M>>();
  /** Lines whose head may start, drained by `drain` (so nothing recurses through them). */
  private readonly ready: Line<M>[] = [];
  private draining = false;
  private readonly transformer: TTransformer<M>;
  private readonly limit: number;
  private readonly write: ITransformLinesOptions<M>['write'];
  private readonly failed: ITransformLinesOptions<M>['failed'];

  constructor(opts: ITransformLinesOptions<M>) {
    this.transformer = opts.transformer;
    this.limit = Math.max(1, Math.floor(opts.limit) || 1);
    this.write = opts.write;
    this.failed = opts.failed;
  }

  /** True when the client has messages waiting for, or in, a transformer call. */
  has(client: Client<M>): boolean {
    return this.lines.get(client)?.pending === true;
  }

  /**
   * Queues one message for `targets[from..]`, each behind its client's earlier messages.
   * `running`, when given, is a transformer call already made for `targets[from - 1]`: it
   * becomes that client's line head and takes the fan-out's first window slot.
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
      const item: IItem<M> = { fanout, line, admitted: true };
      fanout.items.push(item);
      fanout.next = 1;
      fanout.active = 1;
      line.push(item);
      line.running = true;
      running.then(line.onValue, line.onError);
    }
    for (let i = from; i < targets.length; i++) {
      const line = this.lineOf(targets[i]!);
      const item: IItem<M> = { fanout, line, admitted: false };
      fanout.items.push(item);
      line.push(item);
    }
    this.admit(fanout);
    this.drain();
  }

  /** A line head's call settled: write (or count the failure), then let the line and the window move on. */
  settled(line: Line<M>, value: TTransformedValue, error: unknown, rejected: boolean): void {
    line.running = false;
    const item = line.items[line.head]!;
    if (rejected) this.failed(line.client, error);
    else this.write(line.client, value, item.fanout.frame, item.fanout.tail);
    this.finish(line, item);
    this.drain();
  }

  private lineOf(client: Client<M>): Line<M> {
    let line = this.lines.get(client);
    if (line === undefined) {
      line = new Line(client, this);
      this.lines.set(client, line);
    }
    return line;
  }

  /** Admits the fan-out's next items while its window has room; a line whose head was admitted gets ready. */
  private admit(fanout: IFanout<M>): void {
    while (fanout.active < this.limit && fanout.next < fanout.items.length) {
      const item = fanout.items[fanout.next++]!;
      item.admitted = true;
      fanout.active++;
      this.markReady(item.line);
    }
  }

  private markReady(line: Line<M>): void {
    if (line.ready || line.running) return;
    const head = line.items[line.head];
    if (head?.admitted !== true) return;
    line.ready = true;
    this.ready.push(line);
  }

  /** The head item is done: off the line, its window slot freed. */
  private finish(line: Line<M>, item: IItem<M>): void {
    line.shift();
    item.fanout.active--;
    this.admit(item.fanout);
    this.markReady(line);
  }

  /** Starts every ready line's head; synchronous answers and skipped clients move on within the loop. */
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
    const item = line.items[line.head];
    if (item === undefined || !item.admitted || line.running) return;
    const client = line.client;
    const { fanout } = item;
    // A client gone meanwhile is not written to: its transformer is not called either.
    if (client.state === WebSocketClientStates.DISCONNECTED) {
      this.finish(line, item);
      return;
    }
    let result: ReturnType<TTransformer<M>>;
    try {
      result = this.transformer({ client, event: fanout.event, data: fanout.data, frame: fanout.frame });
    } catch (error) {
      this.failed(client, error);
      this.finish(line, item);
      return;
    }
    if (isPromiseLike(result)) {
      line.running = true;
      result.then(line.onValue, line.onError);
      return;
    }
    this.write(client, result, fanout.frame, fanout.tail);
    this.finish(line, item);
  }
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
