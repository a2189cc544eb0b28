import { RoomcastClientError, serverError } from './errors.ts';
import { asPosition, encodeFrame, isRecord } from './frames.ts';
import type { IHistoryOptions, IHistoryResult } from './types.ts';

export const HISTORY_EVENT = 'ws:history';
/** The server answers at most this many `ws:history` requests of a connection at once (TOO_MANY_REQUESTS past it). */
export const MAX_HISTORY_IN_FLIGHT = 4;

interface IPending {
  frame: string;
  /** Sent on the current connection and not answered yet. */
  sent?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  resolve(result: IHistoryResult): void;
  reject(error: RoomcastClientError): void;
}

/**
 * `ws:history` requests. Each carries its own id (the server echoes it on the
 * answer or the error), so several can be in flight at once, up to the
 * server's limit; the rest wait their turn. A request whose connection drops
 * is sent again on the next one.
 */
export class HistoryRequests {
  readonly #pending = new Map<string, IPending>();
  #next = 0;
  #inFlight = 0;
  #send?: (frame: string) => boolean;
  readonly #timeout: number;

  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  request(room: string, options: IHistoryOptions = {}): Promise<IHistoryResult> {
    // The server checks the rest of the shape (INVALID_REQUEST); a non-object cannot even be sent.
    if (typeof room !== 'string' || !isRecord(options)) {
      return Promise.reject(new TypeError('[roomcast] history(room, options?) needs a room name'));
    }
    const id = `h${++this.#next}`;
    const { since, limit, reverse } = options;
    const frame = encodeFrame(HISTORY_EVENT, { room, since, limit, reverse }, id);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { frame, resolve, reject });
      this.#pump();
    });
  }

  /** Connected: send everything that waits. */
  resume(send: (frame: string) => boolean): void {
    this.#send = send;
    this.#pump();
  }

  suspend(): void {
    this.#send = undefined;
    this.#inFlight = 0;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.sent = false;
    }
  }

  /** An answer (`ws:history`) or a refusal (`error`) with an id. False when no request has that id. */
  settle(id: string | undefined, event: string, data: unknown): boolean {
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending) return false;
    this.#finish(id!, pending);
    if (event !== HISTORY_EVENT) {
      pending.reject(serverError(data));
      return true;
    }
    const position = isRecord(data) && asPosition(data);
    if (position && Array.isArray(data.publications))
      pending.resolve({ ...position, publications: data.publications });
    else pending.reject(new RoomcastClientError('BAD_FRAME', 'malformed ws:history answer', data));
    return true;
  }

  failAll(error: RoomcastClientError): void {
    this.suspend();
    for (const [id, pending] of this.#pending) {
      this.#finish(id, pending);
      pending.reject(error);
    }
  }

  /** Sends waiting requests, oldest first, while the connection is up and the server's limit allows. */
  #pump(): void {
    for (const [id, pending] of this.#pending) {
      if (!this.#send || this.#inFlight >= MAX_HISTORY_IN_FLIGHT) return;
      if (!pending.sent) this.#transmit(id, pending);
    }
  }

  #transmit(id: string, pending: IPending): void {
    if (!this.#send!(pending.frame)) return;
    pending.sent = true;
    this.#inFlight++;
    pending.timer = setTimeout(() => {
      this.#finish(id, pending);
      pending.reject(
        new RoomcastClientError('REQUEST_TIMEOUT', `history was not answered within ${this.#timeout}ms`, {
          id,
        }),
      );
    }, this.#timeout);
  }

  #finish(id: string, pending: IPending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    if (pending.sent) this.#inFlight--;
    pending.sent = false;
    this.#pump();
  }
}
