import { RoomcastClientError, serverError } from './errors.ts';
import { encodeFrame, isRecord } from './frames.ts';

export const REPLY_EVENT = 'ws:reply';

/** The server's `connected` `limits` fields this class paces by, in this order. */
const LIMIT_KEYS = [
  'maxPendingRequests',
  'messagesPerSecond',
  'messageBurst',
  'bytesPerSecond',
  'bytesBurst',
];
/** Assumed when `connected` announces no `limits` (a server older than the field): its defaults. */
const FALLBACK = [32, 100, 200, 1_048_576, 2_097_152];
/** Room requests (16) and a token refresh that may be pending on the server besides these. */
const OTHER_PENDING = 17;
/** Share of each burst requests leave unused, so frames bunched up on the way are still admitted. */
const RESERVE = 0.1;

interface IPending {
  id: string;
  frame: string;
  /** Sent on the current connection and not answered yet. */
  sent?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** The event whose frame answers it (`ws:reply` for app requests, the request's own for system ones). */
  answer: string;
  resolve(value: unknown): void;
  reject(error: RoomcastClientError): void;
}

const encoder = new TextEncoder();
/** A limit that is off. */
const OFF = Number.POSITIVE_INFINITY;

/**
 * Requests matched to their answers by id, so any number can be made and be answered in any
 * order. They go out in call order, never past what the server admits: at most
 * `maxPendingRequests - 17` unanswered at once, and only while a client-side copy of the server's
 * frame and byte buckets, charged for every frame the SDK writes, keeps a tenth of each burst
 * spare. The rest wait. One not sent yet waits for a connection; one already sent when the
 * connection drops is rejected with `CONNECTION_LOST` (the server may or may not have run it, so
 * it is not sent again). The timeout runs from the call, connected or not.
 */
export class Requests {
  readonly #pending = new Map<string, IPending>();
  /** Not sent yet, in call order (entries that timed out meanwhile are skipped). */
  #waiting: IPending[] = [];
  /** Sent and unanswered on this connection, counting those that timed out: the server still runs them. */
  #inFlight = 0;
  /** Ids of sent requests that timed out; their late answer frees their place. */
  readonly #late = new Set<string>();
  /** The server's limits (`Infinity` when off), as in LIMIT_KEYS. */
  #limits = FALLBACK;
  /** Frame and byte tokens left, as of `#at` (while not connected: minus what was spent). */
  #frames = 0;
  #bytes = 0;
  #at = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #next = 0;
  #send?: (frame: string) => boolean;

  get size(): number {
    return this.#pending.size;
  }

  /** `answer` is the event of the answering frame; an `error` frame with the same id rejects. */
  request(event: string, data: unknown, timeout: number, answer = REPLY_EVENT): Promise<unknown> {
    const id = `q${++this.#next}`;
    const frame = encodeFrame(event, data, id);
    return new Promise((resolve, reject) => {
      const pending: IPending = { id, frame, answer, resolve, reject };
      pending.timer = setTimeout(() => {
        this.#pending.delete(id);
        // Sent: the server still works on it and holds its place until it answers.
        if (pending.sent) this.#late.add(id);
        // Not sent: forgotten; the queue drops such entries once they are half of it.
        else if (this.#waiting.length > 2 * this.#pending.size + 16)
          this.#waiting = this.#waiting.filter((p) => this.#pending.get(p.id) === p);
        reject(
          new RoomcastClientError('REQUEST_TIMEOUT', `"${event}" was not answered within ${timeout}ms`, {
            event,
            id,
            sent: pending.sent === true,
          }),
        );
      }, timeout);
      this.#pending.set(id, pending);
      this.#waiting.push(pending);
      this.#pump();
    });
  }

  /** Connected: `limits` is what the server's `connected` announced (undefined from an older server). */
  resume(send: (frame: string) => boolean, limits?: unknown): void {
    this.#at = Date.now();
    this.#limits = isRecord(limits)
      ? LIMIT_KEYS.map((key) => {
          const value = limits[key];
          return typeof value === 'number' && value > 0 ? value : OFF;
        })
      : FALLBACK;
    // Full buckets, like the server's at the first frame, less what was written since the socket opened.
    this.#frames += this.#limits[2]!;
    this.#bytes += this.#limits[4]!;
    this.#send = send;
    this.#pump();
  }

  suspend(): void {
    this.#send = undefined;
    clearTimeout(this.#timer);
    this.#inFlight = 0;
    this.#late.clear();
    // Until `resume`, the buckets count what the next connection's frames spend.
    this.#frames = this.#bytes = 0;
    for (const [id, pending] of this.#pending) {
      if (!pending.sent) continue;
      this.#finish(id, pending);
      pending.reject(
        new RoomcastClientError('CONNECTION_LOST', 'the connection dropped before the answer', { id }),
      );
    }
  }

  /** Every frame the SDK writes on the connection spends from the buckets (requests wait for the rest). */
  spend(frame: string): void {
    if (this.#send) this.#refill();
    this.#frames--;
    if (this.#limits[3]! < OFF) this.#bytes -= encoder.encode(frame).length;
  }

  /** A frame with an id: true when it answered (or refused) one of ours. */
  settle(id: string | undefined, event: string, data: unknown): boolean {
    if (id !== undefined && this.#late.delete(id)) {
      this.#inFlight--;
      this.#pump();
      return true;
    }
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || (event !== pending.answer && event !== 'error')) return false;
    this.#finish(id!, pending);
    if (pending.sent) this.#inFlight--;
    this.#pump();
    if (event === 'error') {
      pending.reject(serverError(data));
    } else {
      pending.resolve(data);
    }
    return true;
  }

  failAll(error: RoomcastClientError): void {
    this.suspend();
    this.#waiting = [];
    for (const [id, pending] of this.#pending) {
      this.#finish(id, pending);
      pending.reject(error);
    }
  }

  #refill(): void {
    const now = Date.now();
    const seconds = (now - this.#at) / 1000;
    const [, rate, burst, byteRate, byteBurst] = this.#limits as [number, number, number, number, number];
    this.#at = now;
    if (rate < OFF) this.#frames = Math.min(burst, this.#frames + seconds * rate);
    if (byteRate < OFF) this.#bytes = Math.min(byteBurst, this.#bytes + seconds * byteRate);
  }

  /** Sends waiting requests in order while the pending and rate limits allow; else retries when they will. */
  #pump(): void {
    clearTimeout(this.#timer);
    const [pending, rate, burst, byteRate, byteBurst] = this.#limits as [
      number,
      number,
      number,
      number,
      number,
    ];
    while (this.#send && this.#inFlight < Math.max(1, pending - OTHER_PENDING)) {
      const next = this.#waiting[0];
      if (!next) return;
      if (this.#pending.get(next.id) !== next) {
        this.#waiting.shift();
        continue;
      }
      this.#refill();
      // Seconds until both buckets hold this frame plus the spare tenth (never more than a full bucket).
      const wait = Math.max(
        rate < OFF ? (Math.min(burst, 1 + Math.max(1, burst * RESERVE)) - this.#frames) / rate : 0,
        byteRate < OFF
          ? (Math.min(byteBurst, encoder.encode(next.frame).length + byteBurst * RESERVE) - this.#bytes) /
              byteRate
          : 0,
      );
      if (wait > 0) {
        this.#timer = setTimeout(() => this.#pump(), Math.ceil(wait * 1000));
        return;
      }
      if (!this.#send(next.frame)) return;
      this.#waiting.shift();
      next.sent = true;
      this.#inFlight++;
    }
  }

  #finish(id: string, pending: IPending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(id);
  }
}
