import type { RoomcastClientError } from './errors.ts';
import { isRecord } from './frames.ts';
import type {
  IEncryptionOptions,
  IReconnectOptions,
  IRoomcastClientOptions,
  IRoomRecovery,
  IStateChange,
  TAuthSource,
  TRoomKeysHook,
  TUrlSource,
  TWebSocketConstructor,
} from './types.ts';
import { fail, type IUrlPicker, urlPicker } from './urls.ts';

export type IResolvedReconnect = Required<IReconnectOptions>;

export interface IResolvedClientOptions<Auth extends object> {
  url: IUrlPicker;
  auth?: TAuthSource<Auth>;
  heartbeatInterval: number;
  /** Undefined when reconnecting is turned off. */
  reconnect?: IResolvedReconnect;
  reconnectOnRefusal: boolean;
  maxQueueSize: number;
  requestTimeout: number;
  connectTimeout: number;
  /** HKDF info and the pinned server key when encryption is on; undefined when off. */
  encryption?: IEncryptionOptions;
  autoConnect: boolean;
  WebSocket: TWebSocketConstructor;
  protocols?: string | string[];
  onError?: (error: RoomcastClientError) => void;
  onStateChange?: (change: IStateChange) => void;
  onRecovery?: (recovery: IRoomRecovery) => void;
  roomKeys?: TRoomKeysHook;
}

/** A finite number >= `min` (or the fallback when absent). Infinity only where `allowInfinity`. */
function numberOption(
  name: string,
  value: unknown,
  fallback: number,
  min = 0,
  allowInfinity = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < min ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    fail(`${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

function functionOption<T>(name: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') fail(`${name} must be a function`);
  return value;
}

function resolveReconnect(value: IRoomcastClientOptions['reconnect']): IResolvedReconnect | undefined {
  if (value === false) return undefined;
  if (value !== undefined && value !== true && !isRecord(value)) {
    fail('reconnect must be a boolean or an object');
  }
  const opts: IReconnectOptions = isRecord(value) ? value : {};
  const resolved = {
    initialDelay: numberOption('reconnect.initialDelay', opts.initialDelay, 500),
    maxDelay: numberOption('reconnect.maxDelay', opts.maxDelay, 30_000),
    factor: numberOption('reconnect.factor', opts.factor, 2, 1),
    jitter: numberOption('reconnect.jitter', opts.jitter, 0.5),
    maxAttempts: numberOption('reconnect.maxAttempts', opts.maxAttempts, Number.POSITIVE_INFINITY, 1, true),
  };
  if (resolved.jitter > 1) fail(`reconnect.jitter must be between 0 and 1, got ${resolved.jitter}`);
  if (resolved.maxDelay < resolved.initialDelay) fail('reconnect.maxDelay must be >= initialDelay');
  return resolved;
}

function resolveEncryption(value: IRoomcastClientOptions['encryption']): IEncryptionOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (!isRecord(value)) fail('encryption must be a boolean or { hkdfInfo?, serverPublicKey? }');
  for (const name of ['hkdfInfo', 'serverPublicKey'] as const) {
    const text = value[name];
    if (text !== undefined && (typeof text !== 'string' || text === '')) {
      fail(`encryption.${name} must be a non-empty string`);
    }
  }
  return {
    hkdfInfo: value.hkdfInfo as string | undefined,
    serverPublicKey: value.serverPublicKey as string | undefined,
  };
}

/** Validates everything up front so a misconfigured client fails at creation, not at the first reconnect. */
export function resolveClientOptions<Auth extends object>(
  url: TUrlSource,
  options: IRoomcastClientOptions<Auth> = {},
): IResolvedClientOptions<Auth> {
  if (!isRecord(options as unknown)) fail('options must be an object');
  const { auth } = options;
  if (auth !== undefined && typeof auth !== 'function' && !isRecord(auth as unknown)) {
    fail('auth must be an object or a function returning one');
  }
  const WebSocketImpl = options.WebSocket ?? (globalThis.WebSocket as TWebSocketConstructor | undefined);
  if (typeof WebSocketImpl !== 'function') {
    return fail('no WebSocket implementation: pass options.WebSocket');
  }
  const { protocols } = options;
  if (
    protocols !== undefined &&
    typeof protocols !== 'string' &&
    !(Array.isArray(protocols) && protocols.every((p) => typeof p === 'string'))
  ) {
    fail('protocols must be a string or an array of strings');
  }
  return {
    url: urlPicker(url),
    auth,
    heartbeatInterval: numberOption('heartbeatInterval', options.heartbeatInterval, 30_000),
    reconnect: resolveReconnect(options.reconnect),
    reconnectOnRefusal: options.reconnectOnRefusal === true,
    maxQueueSize: Math.floor(numberOption('maxQueueSize', options.maxQueueSize, 100)),
    requestTimeout: numberOption('requestTimeout', options.requestTimeout, 10_000, 1),
    connectTimeout: numberOption('connectTimeout', options.connectTimeout, 20_000, 1),
    encryption: resolveEncryption(options.encryption),
    autoConnect: options.autoConnect !== false,
    WebSocket: WebSocketImpl,
    protocols,
    onError: functionOption('onError', options.onError),
    onStateChange: functionOption('onStateChange', options.onStateChange),
    roomKeys: functionOption('roomKeys', options.roomKeys),
    onRecovery: functionOption('onRecovery', options.onRecovery),
  };
}
