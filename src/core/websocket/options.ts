import type { Server } from 'bun';
import type { IAdminUiOptions } from '../../admin-ui/options.ts';
import { WebSocketDefaults } from '../../common/constants.ts';
import type { IBunWebSocketConfig } from '../../common/types.ts';
import type { IFleetOptions } from '../../fleet/types.ts';
import type { IMetricsOptions } from '../../metrics/prometheus.ts';
import type { IRoomKeysOptions } from '../../room-keys/types.ts';
import type { IConnectionRateOptions } from '../../server/connection-rate.ts';
import type { IWebSocketLimitsOptions } from '../../server/inbound-limits.ts';
import type { IWebSocketServerOptions } from '../../server/options.ts';
import type { TAllowedOrigins } from '../../server/origin-policy.ts';
import type { IClientCapsOptions } from './client-caps.ts';
import { WebSocketBindingKeys } from './keys.ts';

/** Picks the address an upgrade request is counted under (behind a proxy: from a header it sets). */
export type TClientIpFn = (opts: { request: Request; server: Server<unknown> }) => string | undefined;
/** An application's own admission rule for upgrades; false (or a rejection) refuses with 429 / 500. */
export type TConnectionRateFn = (opts: { ip: string; request: Request }) => boolean | Promise<boolean>;

/**
 * What an application sets through `WebSocketBindingKeys.SERVER_OPTIONS`: every plain option of
 * the helper (the handlers and Redis come from their own bindings, see `HELPER_OPTION_SOURCES`)
 * plus the component's own HTTP-side options. An option left out keeps the helper's default.
 */
export interface IServerOptions {
  identifier: string;
  path?: string;
  defaultRooms?: string[];
  serverOptions?: IBunWebSocketConfig;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  requireEncryption?: boolean;
  /** Per-connection inbound limits, as the helper's `limits` option (`{}` = the defaults, `false` = off). */
  limits?: IWebSocketLimitsOptions | false;
  /**
   * Which pages may open a socket (checked on the upgrade request, refused with 403):
   * `'same-origin'` (default), `'*'`, or exact origins and `https://*.example.com` wildcards.
   * Requests without an `Origin` header (non-browser clients) are always allowed.
   */
  allowedOrigins?: TAllowedOrigins;
  /** `GET` here answers 200 while the process serves requests. Default `'/livez'`; `false` turns it off. */
  livenessPath?: string | false;
  /**
   * `GET` here answers 200 when the helper is configured, not draining and (with Redis) connected to
   * Redis, else 503 with the reasons. Default `'/readyz'`; `false` turns it off.
   */
  readinessPath?: string | false;
  /** On stop, close the clients with 1012 spread over this many ms (0: all at once with 1001). Default 0. */
  drainWindow?: number;
  /**
   * Prometheus metrics (the helper's `metrics` option): `true` or `{ registry?, prefix? }`. Off by
   * default. When on, they are served at `metricsPath`.
   */
  metrics?: boolean | IMetricsOptions;
  /** `GET` here answers the Prometheus scrape while `metrics` is on. Default `'/metrics'`; `false`: not mounted. */
  metricsPath?: string | false;
  /**
   * The admin UI (see docs/admin.md): a page under `adminUi.path` (default `/admin`) that shows the
   * fleet and lets an operator act, behind its own keys or `authorize(request)` hook. Default `false`.
   */
  adminUi?: IAdminUiOptions | false;
  /**
   * Per-IP token bucket on upgrade requests (refused with 429 before a socket exists). Default
   * `{ perSecond: 20, burst: 100, maxTrackedIps: 10_000 }`; `false` turns it off.
   */
  connectionRate?: IConnectionRateOptions | false;
  /** The address an upgrade is counted under. Default: the socket's (`server.requestIP(request)`). */
  clientIpFn?: TClientIpFn;
  /** Called after the built-in bucket admitted an upgrade; false refuses it with 429. Default: none. */
  connectionRateFn?: TConnectionRateFn;
  /**
   * Caps across connections, each off unless set: `maxConnectionsPerAddress` (upgrade refused with
   * 429, a socket that raced past it closed with 4007), `maxRoomsPerAddress` (join refused with
   * `ADDRESS_ROOM_LIMIT`) and `maxRoomsPerUser` (`USER_ROOM_LIMIT`). Per instance. Default `false`.
   */
  clientCaps?: IClientCapsOptions | false;
  /** The helper's `busSecret`: signed Redis bus messages (see docs/cluster.md). Default: off. */
  busSecret?: string | string[];
  /** The helper's `maxEnvelopeBytes`. Default 1 MiB. */
  maxEnvelopeBytes?: number;
  /** The helper's `maxPublishQueueBytes`. Default 16 MiB. */
  maxPublishQueueBytes?: number;
  /** The helper's `authTimeout` (ms a socket may stay unauthenticated). Default 5 000. */
  authTimeout?: number;
  /** The helper's `encryptedBatchLimit`. */
  encryptedBatchLimit?: number;
  /** The helper's `tokenRefreshLead` (ms before `expiresAt`). Default 30 000. */
  tokenRefreshLead?: number;
  /** The helper's `redisReadyTimeout`. Default 30 000 ms. */
  redisReadyTimeout?: number;
  /** The helper's `redisCommandTimeout`. Default 2 000 ms; 0: no bound. */
  redisCommandTimeout?: number;
  /** The helper's `subscriptionMode`: `'pattern'` or `'rooms'`. Default: the bus picks. */
  subscriptionMode?: 'pattern' | 'rooms';
  /** The helper's `presenceTtl` (ms). Default 30 000. */
  presenceTtl?: number;
  /** The helper's `fleet`: announce the instance in the fleet registry (see docs/http-api.md). Default off. */
  fleet?: boolean | IFleetOptions;
  /** The helper's `structuredLogs`: force or refuse `(fields, message)` log calls. Default: detected. */
  structuredLogs?: boolean;
  /** The helper's `roomKeys`: sealed rooms (see docs/security.md). Default: off. */
  roomKeys?: IRoomKeysOptions;
}

/** Options the component passes to the helper only when given, so the helper's own default applies. */
const PASSED_WHEN_GIVEN = [
  'busSecret',
  'maxEnvelopeBytes',
  'maxPublishQueueBytes',
  'authTimeout',
  'encryptedBatchLimit',
  'tokenRefreshLead',
  'redisReadyTimeout',
  'redisCommandTimeout',
  'subscriptionMode',
  'presenceTtl',
  'fleet',
  'structuredLogs',
  'roomKeys',
] as const satisfies ReadonlyArray<keyof IServerOptions>;

type TOptionalHooks = 'clientIpFn' | 'connectionRateFn' | (typeof PASSED_WHEN_GIVEN)[number];

/**
 * Where the component takes each of the helper's options from: `'options'` (a key of the
 * `SERVER_OPTIONS` binding, same name), a binding key, or `'component'` (it supplies the value
 * itself: the Bun server, the application's logger). Typed so that an option added to
 * `IWebSocketServerOptions` and not listed here fails the type check.
 */
export const HELPER_OPTION_SOURCES = Object.freeze({
  identifier: 'options',
  path: 'options',
  redisConnection: WebSocketBindingKeys.REDIS_CONNECTION,
  server: 'component',
  defaultRooms: 'options',
  serverOptions: 'options',
  authTimeout: 'options',
  heartbeatInterval: 'options',
  heartbeatTimeout: 'options',
  encryptedBatchLimit: 'options',
  requireEncryption: 'options',
  authenticateFn: WebSocketBindingKeys.AUTHENTICATE_HANDLER,
  validateRoomFn: WebSocketBindingKeys.VALIDATE_ROOM_HANDLER,
  clientConnectedFn: WebSocketBindingKeys.CLIENT_CONNECTED_HANDLER,
  clientDisconnectedFn: WebSocketBindingKeys.CLIENT_DISCONNECTED_HANDLER,
  messageHandler: WebSocketBindingKeys.MESSAGE_HANDLER,
  outboundTransformer: WebSocketBindingKeys.OUTBOUND_TRANSFORMER,
  handshakeFn: WebSocketBindingKeys.HANDSHAKE_HANDLER,
  tokenRefreshLead: 'options',
  metrics: 'options',
  limits: 'options',
  logger: 'component',
  structuredLogs: 'options',
  redisReadyTimeout: 'options',
  redisCommandTimeout: 'options',
  subscriptionMode: 'options',
  historyFn: WebSocketBindingKeys.HISTORY_HANDLER,
  presenceFn: WebSocketBindingKeys.PRESENCE_HANDLER,
  presenceInfoFn: WebSocketBindingKeys.PRESENCE_INFO_HANDLER,
  presenceTtl: 'options',
  fleet: 'options',
  roomKeys: 'options',
  busSecret: 'options',
  maxEnvelopeBytes: 'options',
  maxPublishQueueBytes: 'options',
  // The component checks the Origin of every upgrade itself, and hands the same policy to the helper.
  allowedOrigins: 'options',
} as const satisfies Record<keyof IWebSocketServerOptions, string>);

/** The helper options an application gives through `SERVER_OPTIONS`. */
export type THelperOptionFromServerOptions = {
  [K in keyof typeof HELPER_OPTION_SOURCES]: (typeof HELPER_OPTION_SOURCES)[K] extends 'options' ? K : never;
}[keyof typeof HELPER_OPTION_SOURCES];

// Every helper option marked 'options' must be a key of IServerOptions with a type the helper takes.
type TAssignable<T extends true> = T;
export type _ServerOptionsCoverHelper = TAssignable<
  Pick<IServerOptions, THelperOptionFromServerOptions> extends Pick<
    IWebSocketServerOptions,
    THelperOptionFromServerOptions
  >
    ? true
    : false
>;

/** `IServerOptions` after the defaults were applied: every field present but the optional hooks. */
export type TResolvedServerOptions = Required<Omit<IServerOptions, TOptionalHooks>> &
  Pick<IServerOptions, TOptionalHooks>;

export const DEFAULT_SERVER_OPTIONS: Readonly<TResolvedServerOptions> = Object.freeze({
  identifier: 'WEBSOCKET_SERVER',
  path: WebSocketDefaults.PATH,
  defaultRooms: Object.freeze([WebSocketDefaults.ROOM, WebSocketDefaults.NOTIFICATION_ROOM]) as string[],
  heartbeatInterval: WebSocketDefaults.HEARTBEAT_INTERVAL,
  heartbeatTimeout: WebSocketDefaults.HEARTBEAT_TIMEOUT,
  requireEncryption: false,
  limits: Object.freeze({}),
  allowedOrigins: 'same-origin',
  livenessPath: '/livez',
  readinessPath: '/readyz',
  drainWindow: 0,
  metrics: false,
  metricsPath: '/metrics',
  adminUi: false,
  connectionRate: Object.freeze({}),
  clientCaps: false,
  serverOptions: Object.freeze({
    sendPings: WebSocketDefaults.SEND_PINGS,
    idleTimeout: WebSocketDefaults.IDLE_TIMEOUT,
    maxPayloadLength: WebSocketDefaults.MAX_PAYLOAD_LENGTH,
  }),
});

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(DEFAULT_SERVER_OPTIONS),
  'clientIpFn',
  'connectionRateFn',
  ...PASSED_WHEN_GIVEN,
]);

/**
 * Lays the bound partial options over the defaults. `serverOptions` is merged
 * key by key, so binding `{ serverOptions: { maxPayloadLength } }` keeps the
 * other Bun defaults. `undefined` values never override a default.
 */
export function mergeServerOptions(bound: Partial<IServerOptions> | undefined): TResolvedServerOptions {
  const given = withoutUndefined(bound ?? {}) as Partial<IServerOptions>;
  const d = DEFAULT_SERVER_OPTIONS;
  // Field by field, so keys the component does not take never reach the helper.
  return {
    identifier: given.identifier ?? d.identifier,
    path: given.path ?? d.path,
    defaultRooms: [...(given.defaultRooms ?? d.defaultRooms)],
    heartbeatInterval: given.heartbeatInterval ?? d.heartbeatInterval,
    heartbeatTimeout: given.heartbeatTimeout ?? d.heartbeatTimeout,
    requireEncryption: given.requireEncryption ?? d.requireEncryption,
    limits: given.limits ?? d.limits,
    allowedOrigins: given.allowedOrigins ?? d.allowedOrigins,
    livenessPath: given.livenessPath ?? d.livenessPath,
    readinessPath: given.readinessPath ?? d.readinessPath,
    drainWindow: given.drainWindow ?? d.drainWindow,
    metrics: given.metrics ?? d.metrics,
    metricsPath: given.metricsPath ?? d.metricsPath,
    adminUi: given.adminUi ?? d.adminUi,
    connectionRate: given.connectionRate ?? d.connectionRate,
    clientCaps: given.clientCaps ?? d.clientCaps,
    clientIpFn: given.clientIpFn,
    connectionRateFn: given.connectionRateFn,
    ...pickGiven(given),
    serverOptions: { ...d.serverOptions, ...withoutUndefined(given.serverOptions ?? {}) },
  };
}

function pickGiven(given: Partial<IServerOptions>): Pick<IServerOptions, (typeof PASSED_WHEN_GIVEN)[number]> {
  const picked: Record<string, unknown> = {};
  for (const key of PASSED_WHEN_GIVEN) if (given[key] !== undefined) picked[key] = given[key];
  return picked;
}

/** Keys of the bound options the component does not use (a misspelt or unknown option). */
export function unknownServerOptionKeys(bound: object | undefined): string[] {
  return Object.keys(bound ?? {}).filter((key) => !KNOWN_KEYS.has(key));
}

function withoutUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
