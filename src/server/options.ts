import { SUBSCRIPTION_MODES, type TSubscriptionMode } from '../bus/cross-instance-bus.ts';
import { resolveBusSecrets } from '../bus/signing.ts';
import { WebSocketDefaults, WebSocketLimits, WebSocketPresenceDefaults } from '../common/constants.ts';
import type { IWebSocketServerOptions } from '../common/types.ts';
import { isRedisConnection } from '../redis/wait-ready.ts';
import { type IResolvedLimits, resolveLimits } from './inbound-limits.ts';
import { isValidRoomName } from './room-names.ts';

const PREFIX = '[WebSocketServerHelper]';

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

/** `maxPublishQueueBytes`: a positive integer (one publication is always let through an empty queue). */
export function resolveMaxPublishQueueBytes(prefix: string, value: unknown): number {
  if (value === undefined) return WebSocketLimits.MAX_PUBLISH_QUEUE_BYTES;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${prefix} maxPublishQueueBytes must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** `maxEnvelopeBytes`: an integer of at least 1 KiB (a bus message's head alone takes a few hundred bytes). */
export function resolveMaxEnvelopeBytes(prefix: string, value: unknown): number {
  if (value === undefined) return WebSocketLimits.MAX_ENVELOPE_BYTES;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1024) {
    throw new Error(`${prefix} maxEnvelopeBytes must be an integer of at least 1024, got ${String(value)}`);
  }
  return value;
}
