/**
 * Bounded FIFO of encoded frames waiting for a connection. Frames are encoded
 * before they are queued, so a payload that cannot be serialized fails at the
 * caller, not at flush time.
 */
export class Outbox {
  #frames: string[] = [];

  constructor(readonly limit: number) {}

  get size(): number {
    return this.#frames.length;
  }

  /** False when full: the caller reports the drop. */
  push(frame: string): boolean {
    if (this.#frames.length >= this.limit) return false;
    this.#frames.push(frame);
    return true;
  }

  /** Sends in order while `send` succeeds; what could not be sent stays queued. */
  flush(send: (frame: string) => boolean): void {
    while (this.#frames.length > 0 && send(this.#frames[0]!)) this.#frames.shift();
  }

  /** Empties the queue and tells how many frames were dropped. */
  clear(): number {
    const dropped = this.#frames.length;
    this.#frames = [];
    return dropped;
  }
}
