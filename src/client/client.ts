import { CipherRefusal, SessionCipher } from './encryption.ts';
import { RoomcastClientError, serverError } from './errors.ts';
import { Listeners } from './events.ts';
import { decodeFrame, encodeFrame, type IFrame, isRecord } from './frames.ts';
import { HISTORY_EVENT, HistoryRequests } from './history-requests.ts';
import { type IResolvedClientOptions, resolveClientOptions } from './options.ts';
import { Outbox } from './outbox.ts';
import { RoomPositions } from './positions.ts';
import { REPLY_EVENT, Requests } from './requests.ts';
import { RoomRequests } from './room-requests.ts';
import { messageOf, Transport } from './transport.ts';
import type {
  IConnectedInfo,
  IDisconnectInfo,
  IHistoryOptions,
  IHistoryResult,
  IPresenceResult,
  IPublicationInfo,
  IRoomcastClientOptions,
  IRoomRecovery,
  IStateChange,
  IStreamPosition,
  IWebSocketLike,
  TEmitArgs,
  TEventMap,
  TListenMap,
  TOutgoingName,
  TSystemEventName,
  TUrlSource,
} from './types.ts';

const OPEN = 1;
const RESERVED_EVENTS = new Set([
  'authenticate',
  'connected',
  'disconnect',
  'join',
  'leave',
  'error',
  'heartbeat',
  'encrypted',
]);

/** `publication` is set for events published to a room that keeps a history. */
type TListenerOf<In extends object, K extends keyof TListenMap<In>> = (
  data: TListenMap<In>[K],
  publication?: IPublicationInfo,
) => unknown;

/**
 * Client of a roomcast server: authenticates on every (re)connect, keeps the
 * connection alive with heartbeats, reconnects with backoff, re-joins rooms,
 * queues what is sent while offline, decrypts `encrypted` frames, and recovers
 * what history rooms published while it was away.
 *
 * `In` types the events received, `Out` the events emitted, `Auth` the auth data.
 */
export class RoomcastClient<
  In extends object = TEventMap,
  Out extends object = In,
  Auth extends object = TEventMap,
  Replies extends object = TEventMap,
> extends Transport {
  /** Resolves with the first connection; rejects if the client stops before it gets one. */
  readonly ready: Promise<IConnectedInfo>;

  readonly #options: IResolvedClientOptions<Auth>;
  readonly #listeners = new Listeners();
  readonly #stateListeners = new Set<(change: IStateChange) => void>();
  readonly #recoveryListeners = new Set<(recovery: IRoomRecovery) => void>();
  readonly #outbox: Outbox;
  readonly #rooms: RoomRequests;
  readonly #positions: RoomPositions;
  readonly #history: HistoryRequests;
  readonly #requests = new Requests();
  /** Presence rooms whose join/leave events were asked for; asked again after each re-join. */
  readonly #presenceRooms = new Set<string>();
  #cipher?: SessionCipher;
  /** Frames of an encrypting connection are handled one after another (decryption is async). */
  #inbound: Promise<void> = Promise.resolve();

  constructor(url: TUrlSource, options?: IRoomcastClientOptions<Auth>) {
    const resolved = resolveClientOptions(url, options);
    super(resolved);
    this.#options = resolved;
    this.#outbox = new Outbox(this.#options.maxQueueSize);
    this.#positions = new RoomPositions(
      (recovery) => this.#notify(this.#options.onRecovery, this.#recoveryListeners, recovery, 'recovery'),
      (room) => this.#rooms.repair(room),
    );
    const { requestTimeout } = this.#options;
    this.#rooms = new RoomRequests(
      requestTimeout,
      (error) => this.report(error),
      this.#positions,
      (granted) => this.#resubscribePresence(granted),
    );
    this.#history = new HistoryRequests(requestTimeout);
    this.ready = this.nextConnection();
    if (this.#options.autoConnect) this.startConnecting();
  }

  // ------------------------------------------------------------------ status

  /** The server's `connected` data while connected. */
  get connection(): IConnectedInfo | undefined {
    return this.state === 'connected' ? this.info : undefined;
  }

  /** Messages waiting for a connection. */
  get queued(): number {
    return this.#outbox.size;
  }

  /** Rooms joined through `join()` and granted; re-joined after each reconnect. */
  get joinedRooms(): ReadonlySet<string> {
    return this.#rooms.joined;
  }

  onStateChange(listener: (change: IStateChange) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Called with the outcome of every recovery of a history room (after a reconnect, a gap, an epoch change). */
  onRecovery(listener: (recovery: IRoomRecovery) => void): () => void {
    this.#recoveryListeners.add(listener);
    return () => this.#recoveryListeners.delete(listener);
  }

  /** Position of the last publication delivered from a joined history room. */
  position(room: string): IStreamPosition | undefined {
    return this.#positions.get(room);
  }

  // ------------------------------------------------------------------ events

  on<K extends keyof TListenMap<In> & string>(event: K, listener: TListenerOf<In, K>): () => void {
    return this.#listeners.add(event, listener as (data: unknown) => void, false);
  }

  once<K extends keyof TListenMap<In> & string>(event: K, listener: TListenerOf<In, K>): () => void {
    return this.#listeners.add(event, listener as (data: unknown) => void, true);
  }

  /** Without `listener`, removes every listener of `event`. */
  off<K extends keyof TListenMap<In> & string>(event: K, listener?: TListenerOf<In, K>): void {
    this.#listeners.remove(event, listener as ((data: unknown) => void) | undefined);
  }

  /**
   * Sends an app event, or queues it while not connected. Returns false when
   * the queue is full and the message was dropped (also reported as an error).
   */
  emit<K extends TOutgoingName<Out>>(
    event: K extends TSystemEventName ? never : K,
    ...args: TEmitArgs<Out[K]>
  ): boolean {
    if (typeof event !== 'string' || event === '' || RESERVED_EVENTS.has(event) || event.startsWith('ws:')) {
      throw new TypeError(`[roomcast] cannot emit "${String(event)}": not an app event name`);
    }
    const frame = encodeFrame(event, args[0]);
    const socket = this.socket;
    // Anything still queued goes first, so messages keep their order.
    if (this.state === 'connected' && socket && this.#outbox.size === 0 && this.write(socket, frame)) {
      return true;
    }
    if (this.#outbox.push(frame)) return true;
    this.report(
      new RoomcastClientError(
        'QUEUE_OVERFLOW',
        `outbound queue is full (${this.#outbox.limit}); "${event}" was dropped`,
        { event },
      ),
    );
    return false;
  }

  /**
   * Sends an app event as a request and resolves with what the server's `messageHandler`
   * returned for it (`ws:reply`). Rejects with `SERVER_ERROR` (the server's code in
   * `serverCode`: the application's `WebSocketRequestError` code, `INTERNAL`,
   * `TOO_MANY_PENDING`...), `REQUEST_TIMEOUT` (default `requestTimeout`), `CONNECTION_LOST`
   * (sent, then the connection dropped: it is not sent again) or `CLOSED`. Sent at once
   * when connected, otherwise on the next connection. Any number may be in flight.
   */
  request<K extends TOutgoingName<Out>>(
    event: K extends TSystemEventName ? never : K,
    data?: Out[K],
    options: { timeout?: number } = {},
  ): Promise<K extends keyof Replies ? Replies[K] : unknown> {
    if (typeof event !== 'string' || event === '' || RESERVED_EVENTS.has(event) || event.startsWith('ws:')) {
      return Promise.reject(
        new TypeError(`[roomcast] cannot request "${String(event)}": not an app event name`),
      );
    }
    return this.#systemRequest(event, data, options.timeout, REPLY_EVENT) as Promise<
      K extends keyof Replies ? Replies[K] : unknown
    >;
  }

  /** Sends `event` and waits for its answer, the `answer` event (by default an event of the same name). */
  #systemRequest(event: string, data: unknown, timeout?: number, answer = event): Promise<unknown> {
    if (this.halted)
      return Promise.reject(new RoomcastClientError('CLOSED', `"${event}" on a closed client`));
    const ms = timeout ?? this.#options.requestTimeout;
    if (!Number.isFinite(ms) || ms <= 0) {
      return Promise.reject(new RangeError('[roomcast] a request timeout must be a positive number of ms'));
    }
    return this.#requests.request(event, data, ms, answer);
  }

  // ---------------------------------------------------------------- presence

  /**
   * Every member of a presence room (on every server instance) and their counts. Needs
   * membership of the room; a refusal rejects with `SERVER_ERROR` and `serverCode`
   * `NOT_IN_ROOM`, `PRESENCE_UNAVAILABLE` (no presence for that room, or Redis down) or `INVALID_REQUEST`.
   */
  presence(room: string, options: { timeout?: number } = {}): Promise<IPresenceResult> {
    return this.#systemRequest('ws:presence', { room }, options.timeout) as Promise<IPresenceResult>;
  }

  /** `{ clients, users }` of a presence room (same rules as `presence()`). */
  async presenceStats(
    room: string,
    options: { timeout?: number } = {},
  ): Promise<{ clients: number; users: number }> {
    const { clients, users } = await this.presence(room, options);
    return { clients, users };
  }

  /**
   * Asks for the `ws:presence:join` / `ws:presence:leave` events of a presence room this
   * client is in (listen with `on()`); renewed after every reconnect once the room is re-joined.
   * Same refusals as `presence()`.
   */
  async subscribePresence(room: string): Promise<void> {
    await this.#systemRequest('ws:presence:subscribe', { room });
    this.#presenceRooms.add(room);
  }

  async unsubscribePresence(room: string): Promise<void> {
    this.#presenceRooms.delete(room);
    await this.#systemRequest('ws:presence:unsubscribe', { room });
  }

  #resubscribePresence(granted: string[]): void {
    for (const room of granted) {
      if (!this.#presenceRooms.has(room)) continue;
      // A system request rejects only with a RoomcastClientError (its timeout was checked at construction).
      this.#systemRequest('ws:presence:subscribe', { room }).catch((error: RoomcastClientError) =>
        this.report(error),
      );
    }
  }

  // ------------------------------------------------------------------- rooms

  /** Asks to join rooms; resolves with the rooms the server granted. Waits for a connection if needed. */
  join(rooms: string | string[]): Promise<string[]> {
    return this.#roomRequest('join', rooms);
  }

  /** Leaves rooms; resolves with the rooms the server confirms were left. */
  leave(rooms: string | string[]): Promise<string[]> {
    return this.#roomRequest('leave', rooms);
  }

  /**
   * Publications a history room still retains, and its current position (`ws:history`).
   * Needs membership of the room. A refusal rejects with `SERVER_ERROR` and the server's
   * code in `serverCode` (`NOT_IN_ROOM`, `HISTORY_UNAVAILABLE`, `UNRECOVERABLE_POSITION`...).
   */
  history(room: string, options?: IHistoryOptions): Promise<IHistoryResult> {
    if (this.halted) return Promise.reject(new RoomcastClientError('CLOSED', 'history() on a closed client'));
    return this.#history.request(room, options);
  }

  // --------------------------------------------------------------- lifecycle

  /** Closes for good (until `connect()`); pending joins reject, queued messages are dropped and reported. */
  close(code = 1000, reason = ''): void {
    if (code !== 1000 && (code < 3000 || code > 4999)) {
      throw new RangeError(`[roomcast] close code must be 1000 or 3000-4999, got ${code}`);
    }
    const dropped = this.#outbox.clear();
    if (dropped > 0) {
      this.report(
        new RoomcastClientError('QUEUE_DISCARDED', `close() dropped ${dropped} queued message(s)`, {
          dropped,
        }),
      );
    }
    this.stop({ code, reason });
  }

  // ------------------------------------------------------------- connection

  /** @internal The socket is gone: the session key, the frames in decryption, what waits for answers on it. */
  protected override suspend(): void {
    this.#cipher = undefined;
    this.#inbound = Promise.resolve();
    this.#rooms.suspend();
    this.#positions.suspend();
    this.#history.suspend();
    this.#requests.suspend();
  }

  /** @internal */
  protected override failAll(error: RoomcastClientError): void {
    this.#rooms.failAll(error);
    this.#history.failAll(error);
    this.#requests.failAll(error);
  }

  /** @internal */
  protected override stateChanged(change: IStateChange): void {
    this.#notify(this.#options.onStateChange, this.#stateListeners, change, 'state');
  }

  /** @internal */
  protected override disconnected(info: IDisconnectInfo): void {
    this.#dispatch('disconnect', info);
  }

  /** The auth data: the `auth` object, or what the `auth` function resolves to. */
  async #credentials(): Promise<Record<string, unknown>> {
    const { auth } = this.#options;
    const value = typeof auth === 'function' ? await (auth as () => Auth | Promise<Auth>)() : auth;
    if (value !== undefined && !isRecord(value)) throw new TypeError('auth must provide an object');
    return { ...value };
  }

  /** @internal */
  protected override async authenticate(socket: IWebSocketLike): Promise<void> {
    let data: Record<string, unknown>;
    try {
      data = await this.#credentials();
    } catch (error) {
      if (this.socket !== socket) return;
      this.report(
        new RoomcastClientError(
          'AUTH_UNAVAILABLE',
          `auth failed to provide data: ${messageOf(error)}`,
          error,
        ),
      );
      this.abandon(socket, 'auth unavailable');
      return;
    }
    if (this.#options.encryption) {
      try {
        const cipher = await SessionCipher.create(this.#options.encryption);
        data = await cipher.authenticateData(data);
        if (this.socket !== socket) return;
        this.#cipher = cipher;
      } catch (error) {
        // No usable WebCrypto here (e.g. an insecure browser context): retrying cannot help.
        if (this.socket !== socket) return;
        const failure = new RoomcastClientError(
          'HANDSHAKE_FAILED',
          `cannot create an encryption key: ${messageOf(error)}`,
          error,
        );
        this.report(failure);
        this.giveUp(socket, 'encryption unavailable', failure);
        return;
      }
    }
    if (this.socket === socket) this.write(socket, encodeFrame('authenticate', data));
  }

  /** @internal */
  protected override receive(socket: IWebSocketLike, raw: unknown): void {
    if (this.socket !== socket) return;
    if (this.#options.encryption) {
      this.#inbound = this.#inbound
        .then(() => this.#handle(socket, raw))
        .catch((error) => this.report(new RoomcastClientError('BAD_FRAME', messageOf(error), error)));
    } else {
      void this.#handle(socket, raw);
    }
  }

  /** Never throws: whatever is wrong with a frame is reported and the connection stays. */
  #handle(socket: IWebSocketLike, raw: unknown): void | Promise<void> {
    if (this.socket !== socket) return;
    const frame = decodeFrame(raw);
    if (typeof frame === 'string') {
      this.report(new RoomcastClientError('BAD_FRAME', `ignored a server frame: ${frame}`, { raw }));
      return;
    }
    if (frame.event === 'encrypted') return this.#decrypt(socket, frame);
    if (this.#cipher?.ready) {
      // After the key exchange every server frame is encrypted (a sealed room's frame under its room
      // key): one in clear was not sent by the server.
      return (
        this.#sealed(socket, frame, false) ??
        this.report(
          new RoomcastClientError('PLAINTEXT_FRAME', `dropped "${frame.event}" sent in clear`, frame),
        )
      );
    }
    return this.#accept(socket, frame, false);
  }

  /** Duplicates and publications past a gap are dropped; the rest are routed. */
  #accept(socket: IWebSocketLike, frame: IFrame, decrypted: boolean): void | Promise<void> {
    const { position } = frame;
    if (!position) return this.#route(socket, frame, decrypted);
    if (!this.#positions.accept(position)) return;
    const settle = () => this.#positions.delivered(position.room);
    const routed = this.#route(socket, frame, decrypted);
    return routed ? routed.then(settle) : settle();
  }

  #route(socket: IWebSocketLike, frame: IFrame, decrypted: boolean): void | Promise<void> {
    const { event, data, id } = frame;
    switch (event) {
      case 'connected':
        if (!decrypted) return this.#connected(socket, data);
        break;
      case 'encrypted':
        break; // an encrypted frame inside an encrypted frame
      case HISTORY_EVENT:
        if (!this.#history.settle(id, event, data))
          this.report(new RoomcastClientError('BAD_FRAME', `unexpected ${event} answer`, frame));
        return;
      case REPLY_EVENT:
      case 'ws:presence':
      case 'ws:presence:subscribe':
      case 'ws:presence:unsubscribe':
        // One that came after its timeout is dropped.
        this.#requests.settle(id, event, data);
        return;
      case 'error': {
        if (this.#history.settle(id, event, data) || this.#requests.settle(id, event, data)) return;
        const error = serverError(data);
        if (!this.#rooms.refuse(id, error)) this.report(error);
        return;
      }
      case 'join':
      case 'leave':
        // An answer nobody waits for (one that came after its timeout) is dropped.
        this.#rooms.acknowledge(event, data, id);
        return;
      case 'ws:refresh':
        // The server asks (no id) for fresh credentials before the current ones expire;
        // its answer to ours (with our id) needs nothing.
        if (frame.id === undefined) void this.#refresh(socket);
        return;
      default: {
        const { ran, results } = this.#dispatch(event, data, frame.position);
        // Answered once every listener returned (and what they returned settled), with the first
        // value that is not undefined; with no listener nothing handled it, so no answer (the
        // server times out). A value JSON cannot encode is reported and not answered.
        const { ack } = frame;
        if (ack !== undefined && ran > 0) {
          Promise.allSettled(results)
            .then((settled) => {
              let value: unknown;
              for (const one of settled) if (value === undefined) value = (one as { value?: unknown }).value;
              if (this.socket === socket) this.write(socket, encodeFrame('ws:ack', value, ack));
            })
            .catch((error) => this.#listenerFailed(event, error));
        }
        return;
      }
    }
    this.report(new RoomcastClientError('BAD_FRAME', `ignored "${event}" inside an encrypted frame`, frame));
  }

  async #connected(socket: IWebSocketLike, data: unknown): Promise<void> {
    if (this.state === 'connected') return;
    if (!isRecord(data) || typeof data.id !== 'string') {
      this.report(new RoomcastClientError('BAD_FRAME', 'ignored a "connected" frame without an id', data));
      return;
    }
    const info: IConnectedInfo = {
      id: data.id,
      time: typeof data.time === 'string' ? data.time : '',
      encrypted: false,
    };
    if (typeof data.userId === 'string') info.userId = data.userId;
    if (typeof data.expiresAt === 'number') info.expiresAt = data.expiresAt;
    if (typeof data.serverPublicKey === 'string') info.serverPublicKey = data.serverPublicKey;
    if (typeof data.salt === 'string') info.salt = data.salt;

    const cipher = this.#cipher;
    if (cipher) {
      try {
        await cipher.derive(info.serverPublicKey, info.salt, data.sequenced === true);
        info.encrypted = true;
      } catch (error) {
        this.report(
          new RoomcastClientError('HANDSHAKE_FAILED', `key exchange failed: ${messageOf(error)}`, error),
        );
        // A pinned key the server did not prove: nothing more is read from this socket.
        if (error instanceof CipherRefusal) return this.abandon(socket, 'server key not proven');
      }
      if (this.socket !== socket) return;
    }

    this.accepted(socket, info);
    const send = (frame: string) => this.write(socket, frame);
    // Rooms first, then what was queued; both before the application hears about the connection.
    this.#rooms.resume(send);
    this.#history.resume(send);
    this.#requests.resume(send, data.limits);
    this.#outbox.flush(send);
    this.connected(info);
    this.#dispatch('connected', info);
  }

  /** Answers the server's refresh request in-band with what `auth` gives now; the connection stays. */
  async #refresh(socket: IWebSocketLike): Promise<void> {
    let data: Record<string, unknown>;
    try {
      data = await this.#credentials();
    } catch (error) {
      // Not fatal yet: the server closes with 4006 at expiry, and a function `auth` gets another chance then.
      this.report(new RoomcastClientError('AUTH_UNAVAILABLE', `refresh: ${messageOf(error)}`, error));
      return;
    }
    if (this.socket === socket) this.write(socket, encodeFrame('ws:refresh', data, `refresh-${Date.now()}`));
  }

  async #decrypt(socket: IWebSocketLike, outer: IFrame): Promise<void> {
    let frame: IFrame;
    try {
      if (!this.#cipher?.ready) throw new Error('no session key (encryption was not negotiated)');
      frame = await this.#cipher.open(outer.data);
    } catch (error) {
      const code = error instanceof CipherRefusal ? error.code : 'DECRYPT_FAILED';
      this.report(new RoomcastClientError(code, `could not decrypt a frame: ${messageOf(error)}`, error));
      return;
    }
    // What the ciphertext says wins; a transformer that seals only `{ event, data }` leaves the
    // position and the request id on the outer frame.
    frame.position ??= outer.position;
    frame.id ??= outer.id;
    if (this.socket === socket) return this.#sealed(socket, frame, true) ?? this.#accept(socket, frame, true);
  }

  /** Sealed rooms (`roomKeys`, room-keys.ts): the frames a sealed-room frame or key lets through are accepted. */
  #sealed(socket: IWebSocketLike, frame: IFrame, decrypted: boolean): Promise<void> | undefined {
    return this.#options.roomKeys?.(
      frame,
      decrypted,
      (error) => this.report(error),
      (one) => this.socket === socket && this.#accept(socket, one, true),
    );
  }

  // ----------------------------------------------------------------- helpers

  #roomRequest(verb: 'join' | 'leave', rooms: string | string[]): Promise<string[]> {
    const list = typeof rooms === 'string' ? [rooms] : rooms;
    if (!Array.isArray(list) || !list.every((room) => typeof room === 'string')) {
      return Promise.reject(new TypeError(`[roomcast] ${verb}() expects a room name or an array of names`));
    }
    if (this.halted) {
      return Promise.reject(new RoomcastClientError('CLOSED', `${verb}() on a closed client`));
    }
    if (verb === 'leave') for (const room of list) this.#presenceRooms.delete(room);
    return list.length === 0 ? Promise.resolve([]) : this.#rooms.request(verb, list);
  }

  /** @internal */
  protected override write(socket: IWebSocketLike, frame: string): boolean {
    if (socket.readyState !== OPEN) return false;
    try {
      socket.send(frame);
      this.#requests.spend(frame);
      return true;
    } catch {
      return false;
    }
  }

  /** Calls the option callback, then every added listener; one that throws does not stop the others. */
  #notify<T>(
    option: ((value: T) => void) | undefined,
    listeners: Set<(value: T) => void>,
    value: T,
    name: string,
  ): void {
    for (const listener of [option, ...listeners]) {
      if (!listener) continue;
      try {
        listener(value);
      } catch (error) {
        this.#listenerFailed(name, error);
      }
    }
  }

  #dispatch(
    event: string,
    data: unknown,
    publication?: IPublicationInfo,
  ): { ran: number; results: unknown[] } {
    return this.#listeners.dispatch(event, data, (error) => this.#listenerFailed(event, error), publication);
  }

  #listenerFailed(event: string, error: unknown): void {
    this.report(
      new RoomcastClientError('LISTENER_FAILED', `a "${event}" listener threw: ${messageOf(error)}`, error),
    );
  }

  /** Hands an error to `onError` and `on('error')` listeners; with neither, to the console (never silent). */
  /** @internal */
  protected override report(error: RoomcastClientError): void {
    const { onError } = this.#options;
    const logFailure = (thrown: unknown) => console.error('[roomcast] an error handler threw', thrown);
    if (onError) {
      try {
        onError(error);
      } catch (thrown) {
        logFailure(thrown);
      }
    }
    if (this.#listeners.has('error')) this.#listeners.dispatch('error', error, logFailure);
    else if (!onError) console.error('[roomcast]', error);
  }
}

export function createClient<
  In extends object = TEventMap,
  Out extends object = In,
  Auth extends object = TEventMap,
  Replies extends object = TEventMap,
>(url: TUrlSource, options?: IRoomcastClientOptions<Auth>): RoomcastClient<In, Out, Auth, Replies> {
  return new RoomcastClient<In, Out, Auth, Replies>(url, options);
}
