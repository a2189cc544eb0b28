import { RoomcastClientError } from './errors.ts';
import { asPosition, encodeFrame, isRecord } from './frames.ts';
import type { IHistoryOptions, IHistoryPublication, IHistoryResult } from './types.ts';

export const HISTORY_EVENT = 'ws:history';

interface IPending {
  frame: string;
  timer?: ReturnType<typeof setTimeout>;
  resolve(result: IHistoryResult): void;
  reject(error: RoomcastClientError): void;
}

function publicationsOf(value: unknown): IHistoryPublication[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list: IHistoryPublication[] = [];
  for (const item of value) {
    if (!isRecord(item) || !Number.isSafeInteger(item.offset) || typeof item.event !== 'string') return;
    list.push({ offset: item.offset as number, event: item.event, data: item.data });
  }
  return list;
}

/** Checks what `history()` was given; the reason it is wrong, or undefined. */
function invalidHistoryArgs(room: unknown, options: unknown): string | undefined {
  if (typeof room !== 'string' || room === '') return 'a room name';
  if (!isRecord(options)) return 'options as an object';
  const { since, limit, reverse } = options;
  if (since !== undefined && !asPosition(since)) return 'since as { offset, epoch }';
  if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) > 0)) {
    return 'limit as a positive integer';
  }
  if (reverse !== undefined && typeof reverse !== 'boolean') return 'reverse as a boolean';
}

/**
 * `ws:history` requests. Each carries its own id (the server echoes it on the
 * answer or the error), so several can be in flight at once. A request whose
 * connection drops is sent again on the next one.
 */
export class HistoryRequests {
  readonly #pending = new Map<string, IPending>();
  #next = 0;
  #send?: (frame: string) => boolean;
  readonly #timeout: number;

  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  request(room: string, options: IHistoryOptions = {}): Promise<IHistoryResult> {
    const wrong = invalidHistoryArgs(room, options);
    if (wrong) return Promise.reject(new TypeError(`[roomcast] history() expects ${wrong}`));
    const id = `h${++this.#next}`;
    const { since, limit, reverse } = options;
    const frame = encodeFrame(HISTORY_EVENT, { room, since, limit, reverse }, id);
    return new Promise((resolve, reject) => {
      const pending: IPending = { frame, resolve, reject };
      this.#pending.set(id, pending);
      if (this.#send) this.#transmit(id, pending);
    });
  }

  /** Connected: send everything that waits. */
  resume(send: (frame: string) => boolean): void {
    this.#send = send;
    for (const [id, pending] of this.#pending) this.#transmit(id, pending);
  }

  suspend(): void {
    this.#send = undefined;
    for (const pending of this.#pending.values()) clearTimeout(pending.timer);
  }

  /** An answer (`ws:history`) or a refusal (`error`) with an id. False when no request has that id. */
  settle(id: string | undefined, event: string, data: unknown): boolean {
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending) return false;
    this.#finish(id!, pending);
    if (event !== HISTORY_EVENT) {
      const message = isRecord(data) && typeof data.message === 'string' ? data.message : 'server error';
      pending.reject(new RoomcastClientError('SERVER_ERROR', message, data));
      return true;
    }
    const position = isRecord(data) && asPosition(data);
    const publications = isRecord(data) && publicationsOf(data.publications);
    if (position && publications) pending.resolve({ publications, ...position });
    else pending.reject(new RoomcastClientError('BAD_FRAME', 'malformed ws:history answer', data));
    return true;
  }

  failAll(error: RoomcastClientError): void {
    for (const [id, pending] of this.#pending) {
      this.#finish(id, pending);
      pending.reject(error);
    }
  }

  #transmit(id: string, pending: IPending): void {
    if (!this.#send!(pending.frame)) return;
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
  }
}
