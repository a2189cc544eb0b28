import { RoomcastClientError } from './errors.ts';
import { encodeFrame } from './frames.ts';
import type { RoomPositions, TSince } from './positions.ts';

/** The server refuses a join/leave that names more rooms than this. */
export const MAX_ROOMS_PER_REQUEST = 100;

type TRoomVerb = 'join' | 'leave';

interface IRoomRequest {
  verb: TRoomVerb;
  rooms: string[];
  /** Re-join after a reconnect or a gap repair, issued by the client itself. */
  internal?: boolean;
  /** Positions sent with this join, taken when it goes out. */
  since?: TSince;
  resolve(rooms: string[]): void;
  reject(error: RoomcastClientError): void;
}

function chunks(rooms: string[]): string[][] {
  const parts: string[][] = [];
  for (let i = 0; i < rooms.length; i += MAX_ROOMS_PER_REQUEST) {
    parts.push(rooms.slice(i, i + MAX_ROOMS_PER_REQUEST));
  }
  return parts;
}

/**
 * Join/leave requests and their acknowledgements. The server answers each
 * request with the rooms it granted (or left), and may answer concurrent joins
 * out of order. Requests go out one at a time, so each answer belongs to the
 * request in flight without sending ids (which the server would echo): fewer
 * bytes here and on the wire.
 */
export class RoomRequests {
  /** Rooms the application joined and the server granted; re-joined after every reconnect. */
  readonly joined = new Set<string>();
  readonly #waiting: IRoomRequest[] = [];
  #inFlight?: IRoomRequest;
  #timer?: ReturnType<typeof setTimeout>;
  #send?: (frame: string) => boolean;

  readonly #timeout: number;
  readonly #report: (error: RoomcastClientError) => void;
  readonly #positions: RoomPositions;

  readonly #onRejoined?: (granted: string[]) => void;

  constructor(
    timeout: number,
    report: (error: RoomcastClientError) => void,
    positions: RoomPositions,
    /** Told which rooms a re-join after a reconnect granted (presence subscriptions follow them). */
    onRejoined?: (granted: string[]) => void,
  ) {
    this.#timeout = timeout;
    this.#report = report;
    this.#positions = positions;
    this.#onRejoined = onRejoined;
  }

  /** Resolves with the rooms the server actually granted (join) or left (leave). */
  request(verb: TRoomVerb, rooms: string[]): Promise<string[]> {
    // Leaving takes effect for reconnects at once, even before the server answers.
    if (verb === 'leave') {
      for (const room of rooms) this.joined.delete(room);
      this.#positions.forget(rooms);
    }
    const parts = chunks([...new Set(rooms)]).map(
      (part) =>
        new Promise<string[]>((resolve, reject) => {
          this.#waiting.push({ verb, rooms: part, resolve, reject });
        }),
    );
    this.#pump();
    return Promise.all(parts).then((answers) => answers.flat());
  }

  /** Connected (again): re-join what was granted before, then continue with waiting requests. */
  resume(send: (frame: string) => boolean): void {
    this.#send = send;
    const rejoin = chunks([...this.joined]).map(
      (rooms): IRoomRequest => ({
        verb: 'join',
        rooms,
        internal: true,
        resolve: (granted) => this.#checkRejoin(rooms, granted),
        reject: this.#report,
      }),
    );
    this.#waiting.unshift(...rejoin);
    this.#pump();
  }

  /** Re-joins one room with `since` so the server replays what a gap left out. */
  repair(room: string): void {
    const done = () => this.#positions.repaired(room);
    this.#waiting.push({ verb: 'join', rooms: [room], internal: true, resolve: done, reject: done });
    this.#pump();
  }

  /** Connection lost: the request in flight is sent again after the next `resume`. */
  suspend(): void {
    this.#send = undefined;
    clearTimeout(this.#timer);
    if (this.#inFlight) this.#waiting.unshift(this.#inFlight);
    this.#inFlight = undefined;
    // Re-joins are rebuilt from `joined` on resume.
    const pending = this.#waiting.filter((request) => !request.internal);
    this.#waiting.length = 0;
    this.#waiting.push(...pending);
  }

  /** A `join` / `leave` answer from the server. False when no such request was waiting for one. */
  acknowledge(verb: TRoomVerb, data: unknown): boolean {
    const request = this.#inFlight;
    if (!request || request.verb !== verb) return false;
    const rooms = (data as { rooms?: unknown } | undefined)?.rooms;
    const answered = Array.isArray(rooms) ? rooms.filter((room) => typeof room === 'string') : [];
    for (const room of answered) {
      if (verb === 'join') this.joined.add(room);
      else this.joined.delete(room);
    }
    if (verb === 'join') this.#positions.joined(answered, data, request.since);
    else this.#positions.forget(answered);
    clearTimeout(this.#timer);
    this.#inFlight = undefined;
    request.resolve(answered);
    this.#pump();
    return true;
  }

  /** Rejects every pending request (the client was closed or gave up). */
  failAll(error: RoomcastClientError): void {
    this.suspend();
    const pending = this.#waiting.splice(0);
    for (const request of pending) request.reject(error);
  }

  #pump(): void {
    if (!this.#send || this.#inFlight) return;
    const request = this.#waiting.shift();
    if (!request) return;
    this.#inFlight = request;
    request.since = request.verb === 'join' ? this.#positions.since(request.rooms) : undefined;
    const { rooms, since } = request;
    this.#send(encodeFrame(request.verb, since ? { rooms, since } : { rooms }));
    this.#timer = setTimeout(() => {
      if (this.#inFlight !== request) return;
      this.#inFlight = undefined;
      request.reject(
        new RoomcastClientError(
          'REQUEST_TIMEOUT',
          `${request.verb} was not answered within ${this.#timeout}ms`,
          {
            rooms: request.rooms,
          },
        ),
      );
      this.#pump();
    }, this.#timeout);
  }

  #checkRejoin(asked: string[], granted: string[]): void {
    this.#onRejoined?.(granted);
    const grantedSet = new Set(granted);
    const denied = asked.filter((room) => !grantedSet.has(room));
    if (denied.length === 0) return;
    for (const room of denied) this.joined.delete(room);
    this.#positions.forget(denied);
    this.#report(
      new RoomcastClientError(
        'REJOIN_DENIED',
        `after reconnecting, the server denied ${denied.length} room(s)`,
        {
          rooms: denied,
        },
      ),
    );
  }
}
