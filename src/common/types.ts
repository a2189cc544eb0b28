import type { Cluster, Redis } from 'ioredis';
import type { IFleetOptions } from '../fleet/types.ts';
import type { THistoryFn } from '../history/types.ts';
import type { IMetricsOptions } from '../metrics/prometheus.ts';
import type { TPresenceFn, TPresenceInfoFn } from '../presence/types.ts';
import type { TWebSocketClientState, TWebSocketMessageType } from './constants.ts';

export type ValueOrPromise<T> = T | Promise<T>;
export type TNullable<T> = T | null | undefined;
export type AnyRecord = Record<string, unknown>;

/** What the helpers need from a Redis helper: the ioredis client to duplicate. */
export interface IRedisConnection {
  getClient(): Redis | Cluster;
}

/** Pluggable logger. The default writes to the console; hot paths never log. */
export interface ILogger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
  /**
   * Optional (pino has it): whether a line at `level` would be written. When it answers false for
   * `debug`, the library does not build its per-connection debug lines at all.
   */
  isLevelEnabled?(level: string): boolean;
}

// ---------------------------------------------------------------------------
// Bun surface, described locally so the library type-checks without Bun's types.
// ---------------------------------------------------------------------------

// Narrower than DOM's ArrayBufferView so Bun's own Server and ServerWebSocket types satisfy these interfaces.
export type TWebSocketPayload = string | ArrayBuffer | SharedArrayBuffer | Uint8Array | DataView;

export interface IWebSocket<T = unknown> {
  readonly data: T;
  readonly remoteAddress: string;
  readonly readyState: number;
  send(data: TWebSocketPayload, compress?: boolean): number;
  publish?(topic: string, data: TWebSocketPayload, compress?: boolean): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  isSubscribed(topic: string): boolean;
  close(code?: number, reason?: string): void;
  cork<R = unknown>(cb: (ws: IWebSocket<T>) => R): R;
}

export interface IBunServer {
  readonly pendingWebSockets: number;
  publish(topic: string, data: TWebSocketPayload, compress?: boolean): number;
}

export interface IBunWebSocketConfig {
  perMessageDeflate?: boolean;
  maxPayloadLength?: number;
  idleTimeout?: number;
  backpressureLimit?: number;
  closeOnBackpressureLimit?: boolean;
  sendPings?: boolean;
  publishToSelf?: boolean;
}

export interface IBunWebSocketHandler extends IBunWebSocketConfig {
  open: (socket: IWebSocket) => void;
  message: (socket: IWebSocket, message: string | Buffer) => void;
  close: (socket: IWebSocket, code: number, reason: string) => void;
  drain: (socket: IWebSocket) => void;
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** Envelope of every frame between a client and the server. */
export interface IWebSocketMessage<DataType = unknown> {
  event: string;
  data?: DataType;
  id?: string;
}

/** Envelope published on the Redis channels between instances and emitters. */
export interface IRedisSocketMessage<DataType = unknown> {
  serverId: string;
  type: TWebSocketMessageType;
  target?: string;
  event: string;
  data: DataType;
  exclude?: string[];
  /** Position of a history room's publication (set by the publish script, with `epoch`). */
  offset?: number;
  epoch?: string;
  /** Publisher's clock (epoch ms) when it published; only from instances with metrics on. */
  sentAt?: number;
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

export interface IWebSocketClient<MetadataType extends object = AnyRecord> {
  id: string;
  userId?: string;
  socket: IWebSocket;
  state: TWebSocketClientState;
  rooms: Set<string>;
  backpressured: boolean;
  encrypted: boolean;
  connectedAt: number;
  lastActivity: number;
  metadata?: MetadataType;
  // Inbound limit state (see `limits`), kept as plain numbers on the record; internal.
  /** @internal */ frameTokens?: number;
  /** @internal */ byteTokens?: number;
  /** @internal */ tokensAt?: number;
  /** @internal refused frames / requests since the last accepted frame */ refusals?: number;
  /** @internal leaky-bucket level of refusals (see `closeAfterRefusals`) */ refusalLevel?: number;
  /** @internal when `refusalLevel` was last updated */ refusalsAt?: number;
  /** @internal requests being worked on */ pendingRequests?: number;
  /** @internal frames refused before authentication */ unauthenticatedFrames?: number;
}

/** What the upgrade attaches to `socket.data`. Only `clientId` and `upgrade` are read. */
export interface IWebSocketData<MetadataType extends object = AnyRecord> {
  clientId: string;
  /** @deprecated not read: return `userId` from `authenticateFn` */
  userId?: string;
  /** @deprecated not read: return `metadata` from `authenticateFn` */
  metadata?: MetadataType;
  /**
   * The upgrade request as `authenticateFn` sees it (`handleUpgrade` and the component set it).
   * Dropped when the `authenticate` frame arrives: nothing of the request stays on the connection.
   */
  upgrade?: IWebSocketUpgrade;
}

/** The read-only part of `Headers` (a `Headers` object fits it; names are case-insensitive). */
export interface IReadonlyHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
  forEach(callback: (value: string, name: string) => void): void;
  [Symbol.iterator](): Iterator<[string, string]>;
}

/**
 * A read-only view of the HTTP upgrade request that opened a connection, handed to
 * `authenticateFn` and `handshakeFn` with the first `authenticate` frame, then dropped.
 */
export interface IWebSocketUpgrade<UpgradeDataType = unknown> {
  /** The request's headers (a copy: the request itself is not kept). */
  readonly headers: IReadonlyHeaders;
  /** The `Cookie` header, parsed (`name → value`, values URI-decoded where valid). */
  readonly cookies: Readonly<Record<string, string>>;
  /** The client's address: the component's `clientIpFn` answer, else the socket's peer address. */
  readonly address: string | undefined;
  /** The request URL (path and query string). */
  readonly url: URL;
  /** `url.searchParams`. */
  readonly query: URLSearchParams;
  /** What the application passed to `handleUpgrade(request, server, data)`. */
  readonly data: UpgradeDataType | undefined;
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

export type TWebSocketAuthenticateFn<
  AuthDataType extends object = AnyRecord,
  MetadataType extends object = AnyRecord,
> = (
  opts: AuthDataType,
  /**
   * The upgrade request (headers, cookies, address, URL, upgrade data) on the first `authenticate`;
   * `undefined` on an in-band refresh (`ws:refresh`) and for sockets not opened through
   * `handleUpgrade` or the component.
   */
  upgrade: IWebSocketUpgrade | undefined,
) => ValueOrPromise<
  | {
      userId?: string;
      metadata?: MetadataType;
      /**
       * When the credentials stop being valid (a `Date` or epoch ms). Before
       * then the client is asked to refresh in-band (`ws:refresh`); without a
       * successful refresh it is closed with 4006. Omit for credentials that do not expire.
       */
      expiresAt?: number | Date;
    }
  | null
  | false
>;

export type TWebSocketValidateRoomFn = (opts: {
  clientId: string;
  userId?: string;
  rooms: string[];
}) => ValueOrPromise<string[]>;

export type TWebSocketClientConnectedFn<MetadataType extends object = AnyRecord> = (opts: {
  clientId: string;
  userId?: string;
  metadata?: MetadataType;
}) => unknown; // what it returns is ignored; a rejected promise is logged

export type TWebSocketClientDisconnectedFn = (opts: { clientId: string; userId?: string }) => unknown; // what it returns is ignored; a rejected promise is logged

/**
 * Receives every application frame. For a frame that carried an `id` (a request), what it
 * returns or resolves to answers the client (`ws:reply`); a throw answers with an `error`
 * (`WebSocketRequestError` picks the code and message, anything else is `INTERNAL`).
 */
export type TWebSocketMessageHandler = (opts: {
  clientId: string;
  userId?: string;
  message: IWebSocketMessage;
}) => ValueOrPromise<unknown>;

export type TWebSocketOutboundTransformer<
  DataType = unknown,
  MetadataType extends object = AnyRecord,
> = (opts: {
  client: IWebSocketClient<MetadataType>;
  event: string;
  data: DataType;
  /**
   * `{ event, data }` already serialized, the same string for every client of
   * this message: encrypt it rather than serializing again per client. Always set
   * by the server helper; optional for callers that invoke a transformer themselves.
   */
  frame?: string;
}) => ValueOrPromise<TNullable<{ event: string; data: DataType }>>;

/**
 * What `handshakeFn` answers; it reaches the client in `connected`. `sequenced: true` says every
 * encrypted frame's IV carries a per-connection counter that only grows (createEcdhEncryption
 * sets it), so the client SDK refuses replayed or reordered ciphertext.
 */
export interface IHandshakeResult {
  serverPublicKey: string;
  salt?: string;
  sequenced?: boolean;
}

export type TWebSocketHandshakeFn<AuthDataType extends object = AnyRecord> = (opts: {
  clientId: string;
  userId?: string;
  data: AuthDataType;
  /** The upgrade request, as `authenticateFn` saw it. */
  upgrade?: IWebSocketUpgrade;
}) => ValueOrPromise<IHandshakeResult | null | false>;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

export interface IWebSocketServerOptions<
  AuthDataType extends object = AnyRecord,
  MetadataType extends object = AnyRecord,
> {
  identifier: string;
  path?: string;
  /**
   * Which pages may open a socket through `handleUpgrade` (the `Origin` check): `'same-origin'`
   * (default), `'*'`, or a list of origins. See `createOriginCheck`.
   */
  allowedOrigins?: 'same-origin' | '*' | readonly string[];
  /** Omit to run on a single instance without Redis (see README, "Single-instance mode"). */
  redisConnection?: IRedisConnection;
  /**
   * The Bun server whose `publish()` reaches this instance's sockets. Omit it when every socket
   * comes through `handleUpgrade(request, server)`: the helper takes the server from the first call.
   */
  server?: IBunServer;
  defaultRooms?: string[];
  serverOptions?: IBunWebSocketConfig;
  authTimeout?: number;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  encryptedBatchLimit?: number;
  requireEncryption?: boolean;

  authenticateFn: TWebSocketAuthenticateFn<AuthDataType, MetadataType>;
  validateRoomFn?: TWebSocketValidateRoomFn;
  clientConnectedFn?: TWebSocketClientConnectedFn<MetadataType>;
  clientDisconnectedFn?: TWebSocketClientDisconnectedFn;
  messageHandler?: TWebSocketMessageHandler;
  // biome-ignore lint/suspicious/noExplicitAny: the transformer chooses its own data type
  outboundTransformer?: TWebSocketOutboundTransformer<any, MetadataType>;
  handshakeFn?: TWebSocketHandshakeFn<AuthDataType>;

  /** How long before `expiresAt` a client is asked to refresh (ms; at most half the lifetime). Default 30 000. */
  tokenRefreshLead?: number;
  /**
   * Prometheus metrics through prom-client: `true` for a registry of the helper's
   * own, or `{ registry?, prefix? }`. Off by default. See `getMetrics()`.
   */
  metrics?: boolean | IMetricsOptions;
  /** Per-connection inbound limits; `false` turns them all off. Defaults in `WebSocketLimits`. */
  limits?: IWebSocketLimitsOptions | false;

  /**
   * Where the helper writes its own diagnostics. Default: the console. A pino-compatible logger
   * (one with `child()`) gets structured fields first: `({ clientId, userId, room, code, err }, message)`.
   */
  logger?: ILogger;
  /** Force (`true`) or refuse (`false`) the structured `(fields, message)` calls; default: detected by `child()`. */
  structuredLogs?: boolean;
  /** Bound on waiting for each Redis connection in `configure()`. Default 30 000 ms. */
  redisReadyTimeout?: number;
  /**
   * Bound (ms) on each Redis command's wait on the publishing connection (publications, history and presence scripts). Past it the operation fails as in an outage
   * (a publication is dropped and counted, a history read ends in `HISTORY_UNAVAILABLE`), and a publication to a history room that Redis gets to only later (a stalled Redis,
   * SIGSTOP, a long fork) is not published at all. Default 2 000 ms; 0: no bound. See docs/recovery.md.
   */
  redisCommandTimeout?: number;
  /**
   * How this instance subscribes on Redis: `'pattern'` (default: every room, client and user
   * channel, by pattern) or `'rooms'` (only the channels it has local recipients for; a `join`
   * is answered once its room's SUBSCRIBE is acknowledged). See docs/scaling.md.
   */
  subscriptionMode?: 'pattern' | 'rooms';
  /**
   * Which rooms keep a history (positions + recovery on join); see docs/recovery.md.
   * Without it nothing changes. Must agree with the emitters' `historyFn`.
   */
  historyFn?: THistoryFn;
  /**
   * Which rooms keep presence (who is in them, on every instance, with join/leave events);
   * see docs/cluster.md. Without it nothing changes.
   */
  presenceFn?: TPresenceFn;
  /** What a presence member exposes of its client (`info`); default nothing. */
  presenceInfoFn?: TPresenceInfoFn<MetadataType>;
  /** Liveness TTL of an instance's presence members in Redis (ms). Default 30 000. */
  presenceTtl?: number;
  /**
   * Announces this instance in the fleet registry in Redis (id, identifier, version, counts,
   * rates, largest rooms), refreshed every `interval` and gone within `ttl` after it dies, for the
   * HTTP API and the admin UI (see docs/http-api.md). Off by default; needs `redisConnection`.
   */
  fleet?: boolean | IFleetOptions;
  /**
   * Signs every message this instance publishes on Redis and drops every one that is not signed
   * (HMAC-SHA-256; see docs/cluster.md, "Signed bus messages"). Several secrets for a rotation:
   * the first signs, any is accepted. Off by default: then whoever can PUBLISH on the Redis
   * controls every socket. Must be set on every instance and emitter together.
   */
  busSecret?: string | string[];
  /**
   * Largest bus message (UTF-8 bytes of its JSON) received from Redis or published to it; larger
   * ones are dropped and counted. Default 1 MiB (`WebSocketLimits.MAX_ENVELOPE_BYTES`).
   */
  maxEnvelopeBytes?: number;
}

/** Each field: a positive number, or `false` to turn that limit off; omitted → the default. */
export interface IWebSocketLimitsOptions {
  /** Sustained inbound frames per second. Default 100. */
  messagesPerSecond?: number | false;
  /** Frames allowed at once above the rate. Default 2 × `messagesPerSecond`. */
  messageBurst?: number | false;
  /** Sustained inbound bytes per second (UTF-8 size of text frames). Default 1 MiB. */
  bytesPerSecond?: number | false;
  /** Bytes allowed at once above the rate. Default 2 × `bytesPerSecond`. */
  bytesBurst?: number | false;
  /** Rooms a client may reach through its own `join` requests (its id room not counted). Default 500. */
  maxRoomsPerClient?: number | false;
  /** Requests of one client in progress at once. Default 32. */
  maxPendingRequests?: number | false;
  /** Refused frames before authentication before the connection is closed with 4005. Default 10. */
  maxUnauthenticatedFrames?: number | false;
  /**
   * Refusals by any limit (rate, rooms, pending requests) that close the connection with 4005, counted
   * in a leaky bucket: each refusal adds 1, the level drains by `closeAfterRefusals` per `refusalWindow`,
   * and accepted frames in between do not reset it. Default 100.
   */
  closeAfterRefusals?: number | false;
  /** Milliseconds in which `closeAfterRefusals` refusals drain away (see there). Default 60 000; `false`: never. */
  refusalWindow?: number | false;
}

export interface IWebSocketEmitterOptions {
  identifier?: string;
  redisConnection: IRedisConnection;
  /** Console-style or pino-compatible (see the server helper's `logger`). */
  logger?: ILogger;
  /** As the server helper's `structuredLogs`. */
  structuredLogs?: boolean;
  /** Bound on waiting for the Redis connection in `configure()`. Default 30 000 ms. */
  redisReadyTimeout?: number;
  /**
   * Bound (ms) on each Redis command's wait (every call). Past it the operation fails as in an outage
   * (the call rejects), and a publication to a history room that Redis gets to only later (a stalled Redis,
   * SIGSTOP, a long fork) is not published at all. Default 2 000 ms; 0: no bound. See docs/recovery.md.
   */
  redisCommandTimeout?: number;
  /** The same `historyFn` as the servers': `toRoom` to such a room gets a position. */
  historyFn?: THistoryFn;
  /** The servers' `busSecret`: what the emitter publishes is signed with the first secret. */
  busSecret?: string | string[];
  /** As the servers' `maxEnvelopeBytes`: a larger message is refused (the call rejects). Default 1 MiB. */
  maxEnvelopeBytes?: number;
}
