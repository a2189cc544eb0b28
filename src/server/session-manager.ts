import type { IRoomChannels } from '../bus/cross-instance-bus.ts';
import {
  WebSocketClientStates,
  WebSocketCloseCodes,
  WebSocketErrorCodes,
  WebSocketEvents,
} from '../common/constants.ts';
import { clientFields, debugLogged, LogRateLimiter } from '../common/log.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocket,
  IWebSocketClient,
  IWebSocketUpgrade,
  IHandshakeResult as THandshakeResult,
  TWebSocketAuthenticateFn,
  TWebSocketClientConnectedFn,
  TWebSocketClientDisconnectedFn,
  TWebSocketHandshakeFn,
} from '../common/types.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import { encodeFrame, isPlainObject } from '../utils/json.ts';
import { fireAndLog, settle, settleSoon, type TCallbackOutcome } from '../utils/safe-call.ts';
import { ClientRecord } from './client-record.ts';
import type { ClientRegistry } from './client-registry.ts';
import { DeadlineQueue, type IDeadline } from './deadline-queue.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import { readExpiry, TokenRefresh } from './token-refresh.ts';

const CONNECTED_HEAD = `{"event":${JSON.stringify(WebSocketEvents.CONNECTED)},"data":{"id":`;

/** `encodeFrame('connected', { id, userId, time }, requestId)`, built as text (`time` is ISO 8601: no escapes). */
export function connectedFrame(
  id: string,
  userId: string | undefined,
  time: string,
  requestId: string | undefined,
  /** JSON text of the `limits` field, if any. */
  limits?: string,
): string {
  const user = userId === undefined ? '' : `,"userId":${JSON.stringify(userId)}`;
  const tail = requestId === undefined ? '}}' : `},"id":${JSON.stringify(requestId)}}`;
  const announced = limits === undefined ? '' : `,"limits":${limits}`;
  return `${CONNECTED_HEAD}${JSON.stringify(id)}${user},"time":"${time}"${announced}${tail}`;
}

/**
 * A clock answering `new Date(now()).toISOString()` without a `Date` per call: the text up to the
 * seconds is formatted once per second and the milliseconds appended; the same millisecond gives
 * the same string.
 */
export function isoClock(now: () => number = () => Date.now()): () => string {
  let at = Number.NaN;
  let text = '';
  let secondAt = Number.NaN;
  let secondText = '';
  return () => {
    const time = now();
    if (time === at) return text;
    at = time;
    const ms = time % 1000;
    if (ms < 0 || !Number.isInteger(time)) {
      text = new Date(time).toISOString();
      return text;
    }
    const second = time - ms;
    if (second !== secondAt) {
      secondAt = second;
      secondText = new Date(second).toISOString().slice(0, -4); // drops `000Z`, keeps the dot
    }
    text = `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
    return text;
  };
}

/** Where a client keeps its pending authentication deadline (a `ClientRecord` declares it). */
interface IDeadlineHolder<M extends object> {
  authDeadline?: IDeadline<IWebSocketClient<M>>;
}

/** Reads the upgrade view off a socket's data and removes it from there. */
function takeUpgrade(socket: IWebSocket): IWebSocketUpgrade | undefined {
  const data = socket.data as { upgrade?: IWebSocketUpgrade } | undefined;
  const upgrade = data?.upgrade;
  if (upgrade !== undefined) (data as { upgrade?: IWebSocketUpgrade }).upgrade = undefined;
  return upgrade;
}

/** `WebSocket.OPEN` */
const OPEN = 1;

export interface ISessionOptions<A extends object, M extends object> {
  registry: ClientRegistry<M>;
  logger: ILogger;
  authTimeout: number;
  defaultRooms: readonly string[];
  requireEncryption: boolean;
  authenticateFn: TWebSocketAuthenticateFn<A, M>;
  handshakeFn?: TWebSocketHandshakeFn<A>;
  clientConnectedFn?: TWebSocketClientConnectedFn<M>;
  clientDisconnectedFn?: TWebSocketClientDisconnectedFn;
  reply: TSystemReply<M>;
  /** Writes an already-serialized frame (what `reply` does after `encodeFrame`). */
  writeFrame: (client: IWebSocketClient<M>, frame: string) => void;
  tokenRefreshLead: number;
  counters: ServerCounters;
  /** Receives how long each authentication took (ms); set only when metrics are on. */
  onAuthTimed?: (ms: number) => void;
  enableEncryption: (client: IWebSocketClient<M>) => void;
  subscribeBroadcast: (client: IWebSocketClient<M>) => void;
  /** `rooms` subscription mode: `connected` waits until the client's own channels are subscribed. */
  channels?: IRoomChannels;
  /** The `limits` field of `connected` (see `announcedLimits`). */
  limits?: Record<string, number>;
}

/**
 * The per-connection state machine: UNAUTHORIZED → AUTHENTICATING →
 * AUTHENTICATED → DISCONNECTED, with the auth timers that bound each step.
 */
export class SessionManager<A extends object = AnyRecord, M extends object = AnyRecord> {
  /** `authTimeout` from open until `authenticate` arrives. */
  private readonly awaitingAuth: DeadlineQueue<IWebSocketClient<M>>;
  /** `authTimeout * 3` from `authenticate` until admitted: bounds a hung `authenticateFn` / `handshakeFn`. */
  private readonly authenticating: DeadlineQueue<IWebSocketClient<M>>;

  /** Expiring credentials and their in-band refresh. */
  readonly refresh: TokenRefresh<A, M>;

  /** JSON text of `opts.limits`, written into every `connected`. */
  private readonly limitsText: string | undefined;

  constructor(private readonly opts: ISessionOptions<A, M>) {
    this.limitsText = opts.limits && JSON.stringify(opts.limits);
    this.refresh = new TokenRefresh<A, M>({
      logger: opts.logger,
      authenticateFn: opts.authenticateFn,
      reply: opts.reply,
      close: (client, code, reason) => this.close(client, code, reason),
      lead: opts.tokenRefreshLead,
      isCurrent: (client) => this.isCurrent(client),
      counters: opts.counters,
    });
    this.awaitingAuth = new DeadlineQueue(opts.authTimeout, (client) =>
      this.expire(client, WebSocketClientStates.UNAUTHORIZED),
    );
    this.authenticating = new DeadlineQueue(opts.authTimeout * 3, (client) =>
      this.expire(client, WebSocketClientStates.AUTHENTICATING),
    );
  }

  /** Number of pending auth deadlines (zero once every client has authenticated or gone). */
  get pendingTimers(): number {
    return this.awaitingAuth.size + this.authenticating.size;
  }

  open(clientId: string, socket: IWebSocket): IWebSocketClient<M> {
    const { registry, logger } = this.opts;
    const existing = registry.get(clientId);
    if (existing) {
      // Ids come from the upgrade; a duplicate means the application reused one.
      logger.warn(
        `Client id ${clientId} is already connected; closing the older connection`,
        clientFields(existing),
      );
      this.close(existing, WebSocketCloseCodes.GOING_AWAY, 'Replaced by a new connection');
      this.disconnect(existing);
    }
    const client = new ClientRecord<M>(clientId, socket, Date.now());
    registry.add(client);
    this.opts.counters.connectionsOpened++;
    socket.subscribe(clientId);
    this.arm(client, this.awaitingAuth);
    return client;
  }

  /**
   * Handles an `authenticate` frame; returns a promise only while something is
   * pending. `requestId` (the frame's `id`) is echoed in the answer.
   */
  authenticate(client: IWebSocketClient<M>, data: unknown, requestId?: string): Promise<void> | undefined {
    const { reply } = this.opts;
    if (client.state === WebSocketClientStates.AUTHENTICATED) {
      replyError(
        reply,
        client,
        WebSocketErrorCodes.ALREADY_AUTHENTICATED,
        'Already authenticated',
        requestId,
      );
      return;
    }
    if (client.state === WebSocketClientStates.AUTHENTICATING) {
      const text = 'Authentication already in progress';
      replyError(reply, client, WebSocketErrorCodes.ALREADY_AUTHENTICATED, text, requestId);
      return;
    }
    if (client.state !== WebSocketClientStates.UNAUTHORIZED) return;
    if (data !== undefined && !isPlainObject(data)) {
      const text = 'authenticate data must be an object';
      replyError(reply, client, WebSocketErrorCodes.INVALID_REQUEST, text, requestId);
      return;
    }
    const payload = (data ?? {}) as A;

    client.state = WebSocketClientStates.AUTHENTICATING;
    // A hung authenticateFn is bounded: the deadline closes the client with 4001
    // after authTimeout * 3, and its late result then finds the client gone.
    this.arm(client, this.authenticating);

    // The upgrade request goes to authenticateFn (and handshakeFn) and leaves the socket now:
    // admitted or refused, the connection keeps nothing of it.
    const upgrade = takeUpgrade(client.socket);
    const started = this.opts.onAuthTimed ? performance.now() : 0;
    const { authenticateFn } = this.opts;
    const auth = settleSoon((credentials: A) => authenticateFn(credentials, upgrade), payload);
    if (auth instanceof Promise) {
      return auth.then((outcome) =>
        this.authenticated(client, payload, outcome, requestId, started, upgrade),
      );
    }
    return this.authenticated(client, payload, auth, requestId, started, upgrade);
  }

  /** The second half of `authenticate`, once `authenticateFn` has answered. */
  private authenticated(
    client: IWebSocketClient<M>,
    payload: A,
    auth: TCallbackOutcome<Awaited<ReturnType<TWebSocketAuthenticateFn<A, M>>>>,
    requestId: string | undefined,
    started: number,
    upgrade: IWebSocketUpgrade | undefined,
  ): Promise<void> | undefined {
    if (!this.isCurrent(client)) return;
    const { counters, onAuthTimed } = this.opts;
    onAuthTimed?.(performance.now() - started);
    if (!auth.ok) {
      counters.authErrors++;
      this.opts.logger.error(
        `authenticateFn threw for client ${client.id}`,
        clientFields(client, { error: auth.error }),
      );
      this.reject(client, WebSocketCloseCodes.AUTH_FAILED, 'Authentication failed', requestId);
      return;
    }
    if (!auth.value || !isPlainObject(auth.value)) {
      counters.authRefused++;
      this.reject(client, WebSocketCloseCodes.AUTH_FAILED, 'Authentication failed', requestId);
      return;
    }
    const { userId, metadata } = auth.value;
    let expiresAt: number | undefined;
    try {
      expiresAt = readExpiry(auth.value.expiresAt, Date.now());
    } catch (error) {
      counters.authRefused++;
      this.opts.logger.warn(
        `authenticateFn for client ${client.id}: ${(error as Error).message}; refused`,
        clientFields(client, { code: WebSocketCloseCodes.AUTH_FAILED }),
      );
      this.reject(client, WebSocketCloseCodes.AUTH_FAILED, 'Authentication failed', requestId);
      return;
    }

    const user = userId === undefined || userId === null ? undefined : String(userId);
    if (!this.opts.requireEncryption) {
      return this.admitSubscribed(client, user, metadata, undefined, requestId, expiresAt);
    }
    return this.handshake(client, user, payload, requestId, upgrade).then((handshake) => {
      if (handshake) return this.admitSubscribed(client, user, metadata, handshake, requestId, expiresAt);
      counters.authRefused++;
    });
  }

  /**
   * `admit`, in `rooms` subscription mode once Redis acknowledged the client's own channels (its
   * id, its id room, its user) and its default rooms: anything another instance sends to the
   * client after `connected` then reaches it. The channels are held here until the registry holds
   * them itself; in `pattern` mode, or when all are subscribed already, nothing waits.
   */
  private admitSubscribed(
    client: IWebSocketClient<M>,
    userId: string | undefined,
    metadata: M | undefined,
    handshake: THandshakeResult | undefined,
    requestId: string | undefined,
    expiresAt: number | undefined,
  ): Promise<void> | undefined {
    const held = this.opts.channels?.holdClient(client.id, userId, this.opts.defaultRooms);
    if (!held?.ready) {
      this.admit(client, userId, metadata, handshake, requestId, expiresAt);
      held?.release();
      return;
    }
    return held.ready.then(() => {
      if (this.isCurrent(client)) this.admit(client, userId, metadata, handshake, requestId, expiresAt);
      held.release();
    });
  }

  /** Forgets a closed client. Safe to call more than once. */
  disconnect(client: IWebSocketClient<M>): void {
    this.clearDeadline(client);
    this.refresh.forget(client);
    const wasAuthenticated = client.state === WebSocketClientStates.AUTHENTICATED;
    this.opts.registry.remove(client);
    if (wasAuthenticated) {
      this.opts.counters.authenticated--;
      fireAndLog(this.opts.logger, 'clientDisconnectedFn', this.opts.clientDisconnectedFn, {
        clientId: client.id,
        userId: client.userId,
      });
    }
  }

  close(client: IWebSocketClient<M>, code: number, reason: string): void {
    this.reportClose(client, code, reason);
    try {
      client.socket.close(code, reason);
    } catch (error) {
      this.opts.logger.debug(
        `close(${code}) on client ${client.id} failed`,
        clientFields(client, { code, error }),
      );
    }
  }

  clearAllTimers(): void {
    this.refresh.clear();
    this.awaitingAuth.clear();
    this.authenticating.clear();
  }

  private async handshake(
    client: IWebSocketClient<M>,
    userId: string | undefined,
    data: A,
    requestId: string | undefined,
    upgrade: IWebSocketUpgrade | undefined,
  ): Promise<THandshakeResult | undefined> {
    const { handshakeFn, logger } = this.opts;
    if (!handshakeFn) {
      logger.error('requireEncryption is true but no handshakeFn configured');
      this.reject(client, WebSocketCloseCodes.ENCRYPTION_REQUIRED, 'Encryption required', requestId);
      return undefined;
    }
    const result = await settle(handshakeFn, { clientId: client.id, userId, data, upgrade });
    if (!this.isCurrent(client)) return undefined;
    if (!result.ok)
      logger.error(
        `handshakeFn threw for client ${client.id}`,
        clientFields(client, { error: result.error }),
      );
    const value = result.ok ? result.value : undefined;
    if (!value || typeof value.serverPublicKey !== 'string') {
      this.reject(client, WebSocketCloseCodes.ENCRYPTION_REQUIRED, 'Encryption handshake failed', requestId);
      return undefined;
    }
    return value;
  }

  private admit(
    client: IWebSocketClient<M>,
    userId: string | undefined,
    metadata: M | undefined,
    handshake: THandshakeResult | undefined,
    requestId: string | undefined,
    expiresAt: number | undefined,
  ): void {
    const { registry } = this.opts;
    this.clearDeadline(client);
    client.state = WebSocketClientStates.AUTHENTICATED;
    this.opts.counters.authAccepted++;
    this.opts.counters.authenticated++;
    client.userId = userId;
    client.metadata = metadata;
    client.lastActivity = Date.now();
    if (handshake) this.opts.enableEncryption(client);
    registry.indexUser(client);
    this.opts.subscribeBroadcast(client);
    registry.admitToRooms(client, this.opts.defaultRooms);
    if (debugLogged(this.opts.logger)) {
      this.opts.logger.debug(`client ${client.id} authenticated`, clientFields(client));
    }

    if (expiresAt === undefined && !handshake) {
      // The common answer, written as text: the bytes JSON.stringify would give, without the object.
      this.opts.writeFrame(
        client,
        connectedFrame(client.id, userId, this.isoNow(), requestId, this.limitsText),
      );
    } else {
      const { limits } = this.opts;
      const connected: Record<string, unknown> = { id: client.id, userId, time: this.isoNow(), limits };
      if (expiresAt !== undefined) {
        connected.expiresAt = expiresAt;
        this.refresh.track(client, expiresAt);
      }
      if (handshake) {
        connected.serverPublicKey = handshake.serverPublicKey;
        if (handshake.salt !== undefined) connected.salt = handshake.salt;
        if (handshake.sequenced === true) connected.sequenced = true;
      }
      // The one frame after admission that stays plain: it carries what the client needs to derive its key.
      this.opts.writeFrame(client, encodeFrame(WebSocketEvents.CONNECTED, connected, requestId));
    }
    fireAndLog(this.opts.logger, 'clientConnectedFn', this.opts.clientConnectedFn, {
      clientId: client.id,
      userId,
      metadata,
    });
  }

  private reject(
    client: IWebSocketClient<M>,
    code: number,
    message: string,
    requestId: string | undefined,
  ): void {
    this.clearDeadline(client);
    const errorCode =
      code === WebSocketCloseCodes.ENCRYPTION_REQUIRED
        ? WebSocketErrorCodes.ENCRYPTION_REQUIRED
        : WebSocketErrorCodes.AUTH_FAILED;
    replyError(this.opts.reply, client, errorCode, message, requestId, code);
    this.close(client, code, message);
  }

  /** One line per close code per 10 s at most (with the count held back) for the closes below. */
  private readonly closeLines = new LogRateLimiter();

  /**
   * Refused authentications and closes for abuse, where an operator sees them (`info` / `warn`,
   * not `debug`), bounded: a flood of bad clients writes one line per code per 10 s.
   */
  private reportClose(client: IWebSocketClient<M>, code: number, reason: string): void {
    const level = OPERATOR_CLOSES[code];
    if (level === undefined) return;
    const held = this.closeLines.take(String(code));
    if (held === undefined) return;
    const more = held > 0 ? `; ${held} more closed with ${code} since the last line` : '';
    this.opts.logger[level](
      `closed client ${client.id} with ${code} (${reason})${more}`,
      clientFields(client, { code, reason, address: client.socket.remoteAddress, held }),
    );
  }

  /** The current time as ISO 8601 (clients connecting in the same millisecond share the string). */
  private readonly isoNow = isoClock();

  /** Replaces the client's deadline with one from `queue` (the record holds it: no map per client). */
  private arm(client: IWebSocketClient<M>, queue: DeadlineQueue<IWebSocketClient<M>>): void {
    this.clearDeadline(client);
    (client as IDeadlineHolder<M>).authDeadline = queue.add(client);
  }

  /** Closes the client with 4001 if it is still in `state` when its deadline passes. */
  private expire(client: IWebSocketClient<M>, state: IWebSocketClient['state']): void {
    const holder = client as IDeadlineHolder<M>;
    if (holder.authDeadline?.item === client) holder.authDeadline = undefined;
    if (this.isCurrent(client) && client.state === state) {
      this.opts.counters.authTimeouts++;
      this.close(client, WebSocketCloseCodes.AUTH_TIMEOUT, 'Authentication timeout');
    }
  }

  private clearDeadline(client: IWebSocketClient<M>): void {
    const holder = client as IDeadlineHolder<M>;
    const deadline = holder.authDeadline;
    if (deadline === undefined) return;
    holder.authDeadline = undefined;
    deadline.queue.cancel(deadline);
  }

  /** False once the client disconnected or is closing, or its id was taken by a newer connection. */
  private isCurrent(client: IWebSocketClient<M>): boolean {
    return (
      this.opts.registry.get(client.id) === client &&
      client.state !== WebSocketClientStates.DISCONNECTED &&
      // Closing (e.g. by the 4001 deadline) but its close callback not yet run: a late
      // authenticateFn result must not admit it.
      client.socket.readyState === OPEN
    );
  }
}

/** Server-initiated closes an operator wants to see, and at which level. */
const OPERATOR_CLOSES: Readonly<Partial<Record<number, 'info' | 'warn'>>> = {
  [WebSocketCloseCodes.AUTH_TIMEOUT]: 'info',
  [WebSocketCloseCodes.AUTH_FAILED]: 'info',
  [WebSocketCloseCodes.ENCRYPTION_REQUIRED]: 'info',
  [WebSocketCloseCodes.LIMIT_EXCEEDED]: 'warn',
};
