import { RoomcastClientError } from './errors.ts';
import { encodeFrame } from './frames.ts';
import type { RoomPositions, TSince } from './positions.ts';

/** The server refuses a join/leave that names more rooms than this. */
export const MAX_ROOMS_PER_REQUEST = 100;
/** Room requests in flight at once; more wait their turn (the server bounds pending requests at 32 by default). */
export const MAX_ROOM_REQUESTS_IN_FLIGHT = 16;

type TRoomVerb = 'join' | 'leave';

interface IRoomRequest {
  verb: TRoomVerb;
  rooms: string[];
  /** Re-join after a reconnect or a gap repair, issued by the client itself. */
  internal?: boolean;
  /** Positions sent with this join, taken when it goes out. */
  since?: TSince;
  /** Set when sent on the current connection; the server echoes it in its answer. */
  id?: string;
  timer?: ReturnType<typeof setTimeout>;
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
 * Join/leave requests and their acknowledgements. Each request carries an id that the server
 * echoes, so several can be in flight and be answered in any order; the server applies one
 * client's room requests in the order it received them, so they go out in call order.
 */
export class RoomRequests {
  /** Rooms the application joined and the server granted; re-joined after every reconnect. */
  readonly joined = new Set<string>();
  /** Not sent yet (no connection, or too many in flight). */
  readonly #waiting: IRoomRequest[] = [];
  /** Sent on the current connection, by id, in the order sent. */
  readonly #inFlight = new Map<string, IRoomRequest>();
  #next = 0;
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

  /** Connection lost: the requests in flight are sent again (in order) after the next `resume`. */
  suspend(): void {
    this.#send = undefined;
    const sent = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const request of sent) {
      clearTimeout(request.timer);
      request.id = undefined;
    }
    // Re-joins are rebuilt from `joined` on resume.
    const pending = [...sent, ...this.#waiting].filter((request) => !request.internal);
    this.#waiting.length = 0;
    this.#waiting.push(...pending);
  }

  /**
   * A `join` / `leave` answer from the server, matched by its id (an answer without one, from a
   * server that does not echo ids, goes to the oldest request of that verb). False when no such
   * request was waiting for one.
   */
  acknowledge(verb: TRoomVerb, data: unknown, id?: string): boolean {
    const request = this.#take(id, verb);
    if (!request) return false;
    const rooms = (data as { rooms?: unknown } | undefined)?.rooms;
    const answered = Array.isArray(rooms) ? rooms.filter((room) => typeof room === 'string') : [];
    for (const room of answered) {
      if (verb === 'join') this.joined.add(room);
      else this.joined.delete(room);
    }
    if (verb === 'join') this.#positions.joined(answered, data, request.since);
    else this.#positions.forget(answered);
    request.resolve(answered);
    this.#pump();
    return true;
  }

  /** An `error` frame with the id of a room request: it rejects with the server's code. */
  refuse(id: string | undefined, error: RoomcastClientError): boolean {
    const request = id === undefined ? undefined : this.#take(id);
    if (!request) return false;
    request.reject(error);
    this.#pump();
    return true;
  }

  /** Rejects every pending request (the client was closed or gave up). */
  failAll(error: RoomcastClientError): void {
    this.suspend();
    const pending = this.#waiting.splice(0);
    for (const request of pending) request.reject(error);
  }

  #take(id: string | undefined, verb?: TRoomVerb): IRoomRequest | undefined {
    let request = id === undefined ? undefined : this.#inFlight.get(id);
    if (id === undefined && verb) {
      for (const candidate of this.#inFlight.values()) {
        if (candidate.verb === verb) {
          request = candidate;
          break;
        }
      }
    }
    if (!request || (verb && request.verb !== verb) || request.id === undefined) return undefined;
    this.#inFlight.delete(request.id);
    clearTimeout(request.timer);
    return request;
  }

  #pump(): void {
    while (this.#send && this.#inFlight.size < MAX_ROOM_REQUESTS_IN_FLIGHT) {
      const request = this.#waiting.shift();
      if (!request) return;
      const id = `r${++this.#next}`;
      request.id = id;
      request.since = request.verb === 'join' ? this.#positions.since(request.rooms) : undefined;
      this.#inFlight.set(id, request);
      const { rooms, since } = request;
      this.#send(encodeFrame(request.verb, since ? { rooms, since } : { rooms }, id));
      request.timer = setTimeout(() => {
        if (this.#inFlight.get(id) !== request) return;
        this.#inFlight.delete(id);
        request.reject(
          new RoomcastClientError(
            'REQUEST_TIMEOUT',
            `${request.verb} was not answered within ${this.#timeout}ms`,
            { rooms: request.rooms },
          ),
        );
        this.#pump();
      }, this.#timeout);
    }
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
