import { WebSocketDefaults } from '../../common/constants.ts';
import type { IBunWebSocketConfig, IWebSocketLimitsOptions } from '../../common/types.ts';
import type { TAllowedOrigins } from '../../server/origin-policy.ts';

/**
 * The part of the helper's options an application sets through
 * `WebSocketBindingKeys.SERVER_OPTIONS`. The rest of the helper's options come
 * from the other bindings (handlers, Redis) or keep the helper's defaults
 * (`authTimeout`, `encryptedBatchLimit`).
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
}

/** `IServerOptions` after the defaults were applied: every field present. */
export type TResolvedServerOptions = Required<IServerOptions>;

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
  serverOptions: Object.freeze({
    sendPings: WebSocketDefaults.SEND_PINGS,
    idleTimeout: WebSocketDefaults.IDLE_TIMEOUT,
    maxPayloadLength: WebSocketDefaults.MAX_PAYLOAD_LENGTH,
  }),
});

const KNOWN_KEYS: ReadonlySet<string> = new Set(Object.keys(DEFAULT_SERVER_OPTIONS));

/**
 * Lays the bound partial options over the defaults. `serverOptions` is merged
 * key by key, so binding `{ serverOptions: { maxPayloadLength } }` keeps the
 * other Bun defaults. `undefined` values never override a default.
 */
export function mergeServerOptions(bound: Partial<IServerOptions> | undefined): TResolvedServerOptions {
  const given = withoutUndefined(bound ?? {}) as Partial<IServerOptions>;
  const d = DEFAULT_SERVER_OPTIONS;
  // Field by field, so keys the component does not take (authTimeout, …) never reach the helper.
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
    serverOptions: { ...d.serverOptions, ...withoutUndefined(given.serverOptions ?? {}) },
  };
}

/** Keys of the bound options the component does not use (e.g. `authTimeout`, a helper-only option). */
export function unknownServerOptionKeys(bound: object | undefined): string[] {
  return Object.keys(bound ?? {}).filter((key) => !KNOWN_KEYS.has(key));
}

function withoutUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
