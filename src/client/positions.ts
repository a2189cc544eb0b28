import { asPosition, isRecord } from './frames.ts';
import type { IPublicationInfo, IRoomRecovery, IStreamPosition } from './types.ts';

interface IRoomStream extends IStreamPosition {
  /** While catching up after a successful recovery: the offset the server said it would replay up to. */
  target?: number;
  /** Publications delivered since the recovery started. */
  recoveredCount: number;
  /** A join with `since` was asked for to fill a gap; no second one until it is answered. */
  repairing?: boolean;
}

export type TSince = Record<string, IStreamPosition>;

/**
 * The last position of every joined room that keeps a history. A room's
 * publications are delivered strictly in offset order: an offset already seen
 * is a duplicate and dropped; an offset beyond the next one is a gap, so that
 * publication is dropped too and the room is re-joined with `since` (the
 * server then replays everything after the last delivered offset, including
 * the dropped one).
 */
export class RoomPositions {
  readonly #rooms = new Map<string, IRoomStream>();
  readonly #report: (recovery: IRoomRecovery) => void;
  readonly #repair: (room: string) => void;

  constructor(report: (recovery: IRoomRecovery) => void, repair: (room: string) => void) {
    this.#report = report;
    this.#repair = repair;
  }

  get(room: string): IStreamPosition | undefined {
    const stream = this.#rooms.get(room);
    return stream && { offset: stream.offset, epoch: stream.epoch };
  }

  /** The `since` of a join naming `rooms`: the known position of each, or undefined when none is known. */
  since(rooms: readonly string[]): TSince | undefined {
    const since: TSince = {};
    let known = false;
    for (const room of rooms) {
      const position = this.get(room);
      if (position) since[room] = position;
      known ||= position !== undefined;
    }
    return known ? since : undefined;
  }

  /** A join answer: continue each granted history room from where recovery leaves it. */
  joined(granted: readonly string[], reply: unknown, since: TSince | undefined): void {
    const positions = isRecord(reply) && isRecord(reply.positions) ? reply.positions : {};
    const recovered = isRecord(reply) && isRecord(reply.recovered) ? reply.recovered : {};
    for (const room of granted) {
      const position = asPosition(positions[room]);
      const asked = since?.[room];
      const known = this.#rooms.get(room);
      if (!position) {
        // No position: the room keeps no history, or the server could not read it (its frames
        // then say where they stand). A recovery that was asked for did not happen.
        if (!asked || !known) this.#rooms.delete(room);
        else this.#settle(room, false, 0);
        continue;
      }
      if (asked && recovered[room] === true) {
        // The missed publications follow this answer; the ones after `asked` are still welcome.
        const offset = known?.epoch === position.epoch ? Math.max(known.offset, asked.offset) : asked.offset;
        this.#rooms.set(room, { offset, epoch: position.epoch, target: position.offset, recoveredCount: 0 });
        this.delivered(room);
        continue;
      }
      // Live from the server's position (unless a publication of the same epoch already went further).
      const offset =
        known?.epoch === position.epoch ? Math.max(known.offset, position.offset) : position.offset;
      this.#rooms.set(room, { offset, epoch: position.epoch, recoveredCount: 0 });
      if (asked) this.#settle(room, false, 0);
    }
    // A gap repair that was not granted stops waiting, so the next gap asks again.
    for (const room of Object.keys(since ?? {})) this.repaired(room);
  }

  /** Whether a publication is delivered (false: duplicate, or past a gap that is now being repaired). */
  accept({ room, offset, epoch }: IPublicationInfo): boolean {
    let stream = this.#rooms.get(room);
    if (!stream) return true;
    if (epoch !== stream.epoch && stream.offset === 0 && stream.epoch.startsWith('~')) {
      // An empty position (the room had no publication yet): its first stream continues it. Its
      // offset 1 is taken as is; a later one is a gap, repaired by a join with the empty
      // position, which the server accepts only when nothing can have been missed.
      if (offset === 1) stream.epoch = epoch;
    } else if (epoch !== stream.epoch) {
      // The server lost this room's history: what was missed of the old epoch cannot come back.
      // The new epoch starts at offset 1; anything of it this client missed is a gap like any other.
      stream = { offset: 0, epoch, recoveredCount: 0 };
      this.#rooms.set(room, stream);
      this.#settle(room, false, 0);
    }
    if (offset <= stream.offset) return false;
    if (offset > stream.offset + 1) {
      if (!stream.repairing) {
        stream.repairing = true;
        this.#repair(room);
      }
      return false;
    }
    stream.offset = offset;
    stream.recoveredCount++;
    return true;
  }

  /** After a publication (or a join answer) was handed to the application: report a finished catch-up. */
  delivered(room: string): void {
    const stream = this.#rooms.get(room);
    if (stream?.target !== undefined && stream.offset >= stream.target) {
      stream.target = undefined;
      this.#settle(room, true, stream.recoveredCount);
    }
  }

  /** A repair request was answered or abandoned. */
  repaired(room: string): void {
    const stream = this.#rooms.get(room);
    if (stream) stream.repairing = false;
  }

  /** The connection is gone: a re-join with `since` follows the reconnect, pending repairs are void. */
  suspend(): void {
    for (const stream of this.#rooms.values()) {
      stream.repairing = false;
      stream.target = undefined;
    }
  }

  forget(rooms: readonly string[]): void {
    for (const room of rooms) this.#rooms.delete(room);
  }

  #settle(room: string, recovered: boolean, recoveredCount: number): void {
    this.#report({ room, recovered, recoveredCount, position: this.get(room)! });
  }
}
