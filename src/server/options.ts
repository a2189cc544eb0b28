import { SUBSCRIPTION_MODES, type TSubscriptionMode } from '../bus/cross-instance-bus.ts';
import { resolveMaxEnvelopeBytes, resolveMaxPublishQueueBytes } from '../bus/guard.ts';
import { resolveBusSecrets } from '../bus/signing.ts';
import { WebSocketDefaults, WebSocketLimits, WebSocketPresenceDefaults } from '../common/constants.ts';
import { isValidRoomName } from '../common/room-names.ts';
import type {
  AnyRecord,
  IBunServer,
  IBunWebSocketConfig,
  ILogger,
  IRedisConnection,
  TWebSocketAuthenticateFn,
  TWebSocketClientConnectedFn,
  TWebSocketClientDisconnectedFn,
  TWebSocketHandshakeFn,
  TWebSocketMessageHandler,
  TWebSocketOutboundTransformer,
  TWebSocketValidateRoomFn,
} from '../common/types.ts';
import type { IFleetOptions } from '../fleet/types.ts';
import type { THistoryFn } from '../history/types.ts';
import type { IMetricsOptions } from '../metrics/prometheus.ts';
import type { TPresenceFn, TPresenceInfoFn } from '../presence/types.ts';
import { isRedisConnection } from '../redis/wait-ready.ts';
import type { IRoomKeysOptions } from '../room-keys/types.ts';
import { type IResolvedLimits, type IWebSocketLimitsOptions, resolveLimits } from './inbound-limits.ts';

const PREFIX = '[WebSocketServerHelper]';

/** The options of `new WebSocketServerHelper(options)`. */
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
   * Sealed rooms (opt-in per room): one AES-256-GCM key per room and generation, given to each
   * encrypted member under its session key; each message is encrypted once and fanned out natively.
   * Needs `outboundTransformer` (per-client encryption). See docs/security.md, "Sealed rooms".
   */
  roomKeys?: IRoomKeysOptions;
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
  /**
   * Most publications waiting for Redis at once (queued for the end of the turn, or sent and not
   * answered yet), in characters of their envelopes (UTF-16 code units: bytes for ASCII). Past it a
   * publication is dropped and counted (`getStats().bus.publishQueueFull`); a single one always
   * goes. Default 16 MiB (`WebSocketLimits.MAX_PUBLISH_QUEUE_BYTES`). See docs/scaling.md.
   */
  maxPublishQueueBytes?: number;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${PREFIX} ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

export interface IResolvedServerSettings {
  path: string;
  defaultRooms: string[];
  authTimeout: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  encryptedBatchLimit: number;
  requireEncryption: boolean;
  limits: IResolvedLimits;
  tokenRefreshLead: number;
  /** Undefined: the bus picks (`pattern`, or `rooms` with sharded Pub/Sub). */
  subscriptionMode?: TSubscriptionMode;
  presenceTtl: number;
  /** `busSecret` as a list (the first signs); undefined when off. */
  busSecrets?: string[];
  maxEnvelopeBytes: number;
  maxPublishQueueBytes: number;
}

/** Validates the constructor options and fills in the documented defaults. Throws on misconfiguration. */
export function resolveServerOptions<A extends object, M extends object>(
  opts: IWebSocketServerOptions<A, M>,
): IResolvedServerSettings {
  if (!opts || typeof opts !== 'object') throw new Error(`${PREFIX} options are required`);
  if (typeof opts.identifier !== 'string' || opts.identifier.length === 0) {
    throw new Error(`${PREFIX} identifier must be a non-empty string`);
  }
  if (opts.server !== undefined && (!opts.server || typeof opts.server.publish !== 'function')) {
    throw new Error(`${PREFIX} server must be a Bun server (an object with publish())`);
  }
  if (typeof opts.authenticateFn !== 'function') {
    throw new Error(`${PREFIX} authenticateFn must be a function`);
  }
  // Omitting the key means single-instance mode; naming it with a bad value is a mistake.
  if ('redisConnection' in opts && !isRedisConnection(opts.redisConnection)) {
    throw new Error(`${PREFIX} Invalid redis connection!`);
  }
  const path = opts.path ?? WebSocketDefaults.PATH;
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new Error(`${PREFIX} path must be a string starting with "/"`);
  }
  const defaultRooms = opts.defaultRooms ?? [WebSocketDefaults.ROOM, WebSocketDefaults.NOTIFICATION_ROOM];
  if (!Array.isArray(defaultRooms) || !defaultRooms.every(isValidRoomName)) {
    throw new Error(
      `${PREFIX} defaultRooms must be valid room names (non-empty, <= 256 chars, no "ws:" prefix)`,
    );
  }
  for (const name of [
    'validateRoomFn',
    'clientConnectedFn',
    'clientDisconnectedFn',
    'messageHandler',
    'outboundTransformer',
    'handshakeFn',
    'historyFn',
    'presenceFn',
    'presenceInfoFn',
  ] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== 'function') {
      throw new Error(`${PREFIX} ${name} must be a function`);
    }
  }
  const subscriptionMode = opts.subscriptionMode;
  if (subscriptionMode !== undefined && !SUBSCRIPTION_MODES.includes(subscriptionMode)) {
    throw new Error(
      `${PREFIX} subscriptionMode must be one of ${SUBSCRIPTION_MODES.map((m) => `"${m}"`).join(', ')}, got ${JSON.stringify(subscriptionMode)}`,
    );
  }
  return {
    subscriptionMode,
    path,
    defaultRooms: [...defaultRooms],
    authTimeout: positive('authTimeout', opts.authTimeout, WebSocketDefaults.AUTH_TIMEOUT),
    heartbeatInterval: positive(
      'heartbeatInterval',
      opts.heartbeatInterval,
      WebSocketDefaults.HEARTBEAT_INTERVAL,
    ),
    heartbeatTimeout: positive(
      'heartbeatTimeout',
      opts.heartbeatTimeout,
      WebSocketDefaults.HEARTBEAT_TIMEOUT,
    ),
    encryptedBatchLimit:
      Math.floor(
        positive('encryptedBatchLimit', opts.encryptedBatchLimit, WebSocketDefaults.ENCRYPTED_BATCH_LIMIT),
      ) || 1,
    requireEncryption: opts.requireEncryption === true,
    limits: resolveLimits(opts.limits),
    tokenRefreshLead: positive('tokenRefreshLead', opts.tokenRefreshLead, WebSocketLimits.TOKEN_REFRESH_LEAD),
    presenceTtl: positive('presenceTtl', opts.presenceTtl, WebSocketPresenceDefaults.TTL),
    busSecrets: resolveBusSecrets(PREFIX, opts.busSecret),
    maxEnvelopeBytes: resolveMaxEnvelopeBytes(PREFIX, opts.maxEnvelopeBytes),
    maxPublishQueueBytes: resolveMaxPublishQueueBytes(PREFIX, opts.maxPublishQueueBytes),
  };
}
