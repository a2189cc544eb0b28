/** `extra`: the publication's position, for events of history rooms. */
type TListener = (data: unknown, extra?: unknown) => unknown;

interface IEntry {
  listener: TListener;
  once: boolean;
}

/** Untyped listener registry; the client puts the typed surface on top of it. */
export class Listeners {
  readonly #byEvent = new Map<string, IEntry[]>();

  add(event: string, listener: TListener, once: boolean): () => void {
    if (typeof listener !== 'function') throw new TypeError('[roomcast] a listener must be a function');
    const entries = this.#byEvent.get(event) ?? [];
    entries.push({ listener, once });
    this.#byEvent.set(event, entries);
    return () => this.remove(event, listener);
  }

  /** Without `listener`, removes every listener of `event`. */
  remove(event: string, listener?: TListener): void {
    const entries = this.#byEvent.get(event);
    if (!entries) return;
    const kept = listener ? entries.filter((entry) => entry.listener !== listener) : [];
    if (kept.length > 0) this.#byEvent.set(event, kept);
    else this.#byEvent.delete(event);
  }

  has(event: string): boolean {
    return this.#byEvent.has(event);
  }

  /**
   * Calls every listener of `event`; a throwing listener is handed to `onThrow` and the rest
   * still run. Returns how many listeners ran and what each returned (a throwing one, nothing).
   */
  dispatch(
    event: string,
    data: unknown,
    onThrow: (error: unknown) => void,
    extra?: unknown,
  ): { ran: number; results: unknown[] } {
    const entries = this.#byEvent.get(event);
    const results: unknown[] = [];
    if (!entries) return { ran: 0, results };
    for (const entry of [...entries]) {
      if (entry.once) this.remove(event, entry.listener);
      try {
        results.push(entry.listener(data, extra));
      } catch (error) {
        onThrow(error);
      }
    }
    return { ran: entries.length, results };
  }
}
