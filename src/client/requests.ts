import { RoomcastClientError } from './errors.ts';
import { encodeFrame, isRecord } from './frames.ts';

export const REPLY_EVENT = 'ws:reply';

interface IPending {
  frame: string;
  timeout: number;
  /** Sent on the current connection and not answered yet. */
  sent?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** The event whose frame answers it (`ws:reply` for app requests, the request's own for system ones). */
  answer: string;
  resolve(value: unknown): void;
  reject(error: RoomcastClientError): void;
}

/**
 * Requests matched to their answers by id, so any number can be in flight and be answered in
 * any order. One not sent yet waits for a connection; one already sent when the connection
 * drops is rejected with `CONNECTION_LOST` (the server may or may not have run it, so it is
 * not sent again). The timeout runs from the call, connected or not.
 */
export class Requests {
  readonly #pending = new Map<string, IPending>();
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
      const pending: IPending = { frame, timeout, answer, resolve, reject };
      pending.timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new RoomcastClientError('REQUEST_TIMEOUT', `"${event}" was not answered within ${timeout}ms`, {
            event,
            id,
          }),
        );
      }, timeout);
      this.#pending.set(id, pending);
      if (this.#send) this.#transmit(pending);
    });
  }

  resume(send: (frame: string) => boolean): void {
    this.#send = send;
    for (const pending of this.#pending.values()) if (!pending.sent) this.#transmit(pending);
  }

  suspend(): void {
    this.#send = undefined;
    for (const [id, pending] of this.#pending) {
      if (!pending.sent) continue;
      this.#finish(id, pending);
      pending.reject(
        new RoomcastClientError('CONNECTION_LOST', 'the connection dropped before the answer came', { id }),
      );
    }
  }

  /** A frame with an id: true when it answered (or refused) one of ours. */
  settle(id: string | undefined, event: string, data: unknown): boolean {
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || (event !== pending.answer && event !== 'error')) return false;
    this.#finish(id!, pending);
    if (event === 'error') {
      const message = isRecord(data) && typeof data.message === 'string' ? data.message : 'server error';
      pending.reject(new RoomcastClientError('SERVER_ERROR', message, data));
    } else {
      pending.resolve(data);
    }
    return true;
  }

  failAll(error: RoomcastClientError): void {
    for (const [id, pending] of this.#pending) {
      this.#finish(id, pending);
      pending.reject(error);
    }
  }

  #transmit(pending: IPending): void {
    if (this.#send?.(pending.frame)) pending.sent = true;
  }

  #finish(id: string, pending: IPending): void {
    clearTimeout(pending.timer);
    this.#pending.delete(id);
  }
}
