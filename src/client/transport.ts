import { backoffDelay } from './backoff.ts';
import { RoomcastClientError } from './errors.ts';
import { encodeFrame } from './frames.ts';
import type { IResolvedClientOptions } from './options.ts';
import type {
  ICloseInfo,
  IConnectedInfo,
  IDisconnectInfo,
  IStateChange,
  IWebSocketLike,
  TConnectionState,
} from './types.ts';

/** Auth failed / encryption refused: retrying with the same credentials would be refused again. */
const REFUSAL_CODES = new Set([4003, 4004]);
/** The server closed with `disconnect({ reconnect: false })`: final, whatever `reconnectOnRefusal` says. */
const NO_RECONNECT = 4008;
/** The server closed because the credentials expired without a successful refresh. */
const TOKEN_EXPIRED = 4006;
/** Code the client closes with when it gives up on an attempt itself (timeout, no auth data). */
const ABANDONED = 4000;
const HEARTBEAT_FRAME = encodeFrame('heartbeat');

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface IWaiter {
  resolve(info: IConnectedInfo): void;
  reject(error: RoomcastClientError): void;
}

/**
 * The connection and reconnect state machine `RoomcastClient` is built on: opens a socket (picking
 * the URL), bounds each attempt by `connectTimeout`, sends heartbeats once connected, and after a
 * close reconnects with backoff or stops for good (a refusal, reconnect off, attempts exhausted).
 * What flows over the socket is the client's: it authenticates, handles the frames and is told of
 * every transition through the protected hooks below.
 *
 * (A base class rather than a part the client holds: the SDK's bundle budget has no room for the
 * forwarding a separate object needs; see docs/client.md, "Size". Its protected members are internal.)
 */
export abstract class Transport {
  readonly #options: IResolvedClientOptions<object>;
  #url: string;
  /** Sockets opened so far (the URL picker's `attempt`). */
  #attempts = 0;
  #current: TConnectionState = 'disconnected';
  /** No socket is open or planned. */
  #stopped = true;
  /** @internal Stopped by `close()` or after giving up; `connect()` / `reconnect()` start again. Read-only for the client. */
  protected halted = false;
  /** @internal The socket of the current attempt or connection. Read-only for the client. */
  protected socket?: IWebSocketLike;
  /** @internal The server's `connected` data of the current (or last) connection. Read-only for the client. */
  protected info?: IConnectedInfo;
  #closeInfo?: ICloseInfo;
  /** Consecutive attempts that did not reach `connected`. */
  #failures = 0;
  #retryTimer?: ReturnType<typeof setTimeout>;
  #connectTimer?: ReturnType<typeof setTimeout>;
  #heartbeatTimer?: ReturnType<typeof setInterval>;
  #waiters: IWaiter[] = [];

  constructor(options: IResolvedClientOptions<object>) {
    this.#options = options;
    this.#url = options.url.initial;
  }

  // ------------------------------------------------------------- public state

  /** URL of the current (or most recent) connection attempt; '' before the first one when `url` is a function. */
  get url(): string {
    return this.#url;
  }

  get state(): TConnectionState {
    return this.#current;
  }

  /** Code and reason of the most recent close. */
  get lastClose(): ICloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Starts connecting (needed with `autoConnect: false` or after `close()`); resolves when connected. */
  connect(): Promise<IConnectedInfo> {
    if (this.#current === 'connected' && this.info) return Promise.resolve(this.info);
    const next = this.nextConnection();
    if (this.#stopped) this.startConnecting();
    return next;
  }

  /** Drops the current connection (if any) and connects again now, also after a refusal. */
  reconnect(): Promise<IConnectedInfo> {
    const next = this.nextConnection();
    const socket = this.socket;
    if (socket) this.#shut(socket, { code: 1000, reason: 'reconnecting' }, true);
    this.startConnecting();
    return next;
  }

  // ---------------------------------------------------- for the client (internal)

  /** @internal Resolves with the next connection; rejects if the client stops before it gets one. */
  protected nextConnection(): Promise<IConnectedInfo> {
    const next = new Promise<IConnectedInfo>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    // Fire-and-forget callers must not end up with an unhandled rejection.
    next.catch(() => {});
    return next;
  }

  /** @internal Starts connecting now: `reconnecting` once a connection was ever made, else `connecting`. */
  protected startConnecting(): void {
    this.#stopped = false;
    this.halted = false;
    this.#failures = 0;
    clearTimeout(this.#retryTimer);
    this.#setState(this.info ? 'reconnecting' : 'connecting');
    this.#open();
  }

  /** @internal Closes for good (until `connect()`). */
  protected stop(close: ICloseInfo): void {
    const socket = this.socket;
    const wasConnected = socket ? this.#shut(socket, close, false) : false;
    if (!this.halted) {
      this.#closeInfo = close;
      this.#halt(close, new RoomcastClientError('CLOSED', 'the client was closed'));
    }
    if (wasConnected) this.disconnected({ ...close, willReconnect: false });
  }

  /** @internal The server accepted `socket`: the attempt is over, heartbeats start. `connected()` follows. */
  protected accepted(socket: IWebSocketLike, info: IConnectedInfo): void {
    clearTimeout(this.#connectTimer);
    this.#failures = 0;
    this.info = info;
    const every = this.#options.heartbeatInterval;
    if (every > 0) this.#heartbeatTimer = setInterval(() => this.write(socket, HEARTBEAT_FRAME), every);
  }

  /** @internal Connected: announced, and whoever waits for a connection gets it. */
  protected connected(info: IConnectedInfo): void {
    this.#setState('connected');
    this.#settleWaiters(info);
  }

  /** @internal An attempt that the client ends itself, then handled like any other close. */
  protected abandon(socket: IWebSocketLike, reason: string): void {
    if (this.socket !== socket) return;
    const close = { code: ABANDONED, reason };
    this.#afterClose(close, this.#shut(socket, close, false));
  }

  /** @internal Ends an attempt retrying cannot help (no usable WebCrypto): stopped with `error`. */
  protected giveUp(socket: IWebSocketLike, reason: string, error: RoomcastClientError): void {
    const close = { code: ABANDONED, reason };
    this.#shut(socket, close, false);
    this.#closeInfo = close;
    this.#halt(close, error);
  }

  // ------------------------------------------------------------- the client's hooks

  /** @internal A socket opened: authenticate on it. */
  protected abstract authenticate(socket: IWebSocketLike): void;
  /** @internal A frame arrived on `socket` (maybe no longer the current one). */
  protected abstract receive(socket: IWebSocketLike, raw: unknown): void;
  /** @internal Sends a frame if the socket is open; false when it could not. */
  protected abstract write(socket: IWebSocketLike, frame: string): boolean;
  /** @internal The socket is gone: what was tied to it (session key, answers awaited on it) is let go. */
  protected abstract suspend(): void;
  /** @internal Stopped for good: every pending operation fails with `error`. */
  protected abstract failAll(error: RoomcastClientError): void;
  /** @internal The connection state changed. */
  protected abstract stateChanged(change: IStateChange): void;
  /** @internal The connection that was up closed. */
  protected abstract disconnected(info: IDisconnectInfo): void;
  /** @internal Hands an error to the application. */
  protected abstract report(error: RoomcastClientError): void;

  // ------------------------------------------------------------------ machinery

  #open(): void {
    let socket: IWebSocketLike;
    try {
      const previous = this.#attempts > 0 ? this.#url : undefined;
      try {
        this.#url = this.#options.url.pick({ attempt: this.#attempts++, previous });
      } catch (error) {
        this.report(new RoomcastClientError('BAD_URL', messageOf(error), error));
        throw error;
      }
      socket = new this.#options.WebSocket(this.#url, this.#options.protocols);
    } catch (error) {
      this.#afterClose({ code: 1006, reason: messageOf(error) }, false);
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.authenticate(socket);
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      const close = { code: event.code, reason: event.reason };
      this.#afterClose(close, this.#teardown(socket));
    };
    socket.onerror = () => {}; // a close event always follows
    this.#connectTimer = setTimeout(
      () => this.abandon(socket, 'connect timeout'),
      this.#options.connectTimeout,
    );
  }

  /** Forgets a socket: no more events from it, timers stopped. Returns whether it was connected. */
  #teardown(socket: IWebSocketLike): boolean {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    this.socket = undefined;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#heartbeatTimer);
    this.suspend();
    return this.#current === 'connected';
  }

  /** Tears down and closes a socket the client itself gives up on; the caller decides what follows. */
  #shut(socket: IWebSocketLike, close: ICloseInfo, announce: boolean): boolean {
    const wasConnected = this.#teardown(socket);
    try {
      socket.close(close.code, close.reason);
    } catch {}
    if (wasConnected && announce) this.disconnected({ ...close, willReconnect: true });
    return wasConnected;
  }

  /** Reconnect with backoff, or stop for good (refusal, reconnect off, attempts exhausted). */
  #afterClose(close: ICloseInfo, wasConnected: boolean): void {
    this.#closeInfo = close;
    const policy = this.#options.reconnect;
    // Expired credentials (4006) are worth a new attempt only when `auth` is a function that can fetch new ones.
    const expired = close.code === TOKEN_EXPIRED && typeof this.#options.auth !== 'function';
    const refused =
      close.code === NO_RECONNECT ||
      ((REFUSAL_CODES.has(close.code) || expired) && !this.#options.reconnectOnRefusal);
    const willReconnect = !refused && policy !== undefined && this.#failures < policy.maxAttempts;
    if (willReconnect) {
      const delay = backoffDelay(this.#failures, policy);
      this.#failures++;
      this.#setState('reconnecting', { close, attempt: this.#failures, delay });
      this.#retryTimer = setTimeout(() => this.#open(), delay);
    } else if (refused) {
      this.#halt(
        close,
        new RoomcastClientError(
          'REFUSED',
          `the server refused the connection (${close.code} ${close.reason})`,
          close,
        ),
      );
    } else if (policy) {
      const error = new RoomcastClientError(
        'RECONNECT_EXHAUSTED',
        `gave up after ${this.#failures} reconnect attempt(s)`,
        close,
      );
      this.report(error);
      this.#halt(close, error);
    } else {
      this.#halt(close, new RoomcastClientError('CLOSED', `connection closed (${close.code})`, close));
    }
    if (wasConnected) this.disconnected({ ...close, willReconnect });
  }

  #halt(close: ICloseInfo, error: RoomcastClientError): void {
    this.#stopped = true;
    this.halted = true;
    clearTimeout(this.#retryTimer);
    this.#setState('disconnected', { close });
    this.failAll(error);
    this.#settleWaiters(undefined, error);
  }

  #settleWaiters(info: IConnectedInfo | undefined, error?: RoomcastClientError): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (info) waiter.resolve(info);
      else waiter.reject(error!);
    }
  }

  #setState(state: TConnectionState, extra: Partial<IStateChange> = {}): void {
    const previous = this.#current;
    // Each reconnect attempt is announced, other repeats are not.
    if (previous === state && state !== 'reconnecting') return;
    this.#current = state;
    this.stateChanged({ ...extra, state, previous });
  }
}
