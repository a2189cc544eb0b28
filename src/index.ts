// Package root: the server helper, the emitter, Redis helpers, crypto and utilities.

export * from './common/constants.ts';
export { createConsoleLogger, silentLogger } from './common/logger.ts';
export { assertBunRuntime, isBunRuntime } from './common/runtime.ts';
export type * from './common/types.ts';
export {
  DEFAULT_HKDF_INFO,
  ECDH,
  type ICipherOptions,
  type IECDHKeyPair,
  type IECDHOptions,
  type IEncryptedPayload,
  type TECDHAlgorithm,
} from './crypto/ecdh.ts';
export {
  createEcdhEncryption,
  type IEcdhEncryption,
  type IEcdhEncryptionOptions,
} from './crypto/ecdh-session.ts';
export { WebSocketEmitter } from './emitter/websocket-emitter.ts';
export {
  DefaultRedisHelper,
  type IDefaultRedisHelperOptions,
  type IRedisHelperCallbacks,
} from './redis/default-redis-helper.ts';
export { type IRedisClusterHelperOptions, RedisClusterHelper } from './redis/redis-cluster-helper.ts';
export { type IRedisHelperOptions, RedisHelper } from './redis/redis-helper.ts';
export { waitForRedisReady } from './redis/wait-ready.ts';
export type { IShutdownOptions } from './server/drain.ts';
export {
  createOriginCheck,
  isOriginAllowed,
  type TAllowedOrigins,
  type TOriginCheck,
} from './server/origin-policy.ts';
export { isValidRoomName } from './server/room-names.ts';
export { type ISendOptions, WebSocketServerHelper } from './server/websocket-server-helper.ts';
export { executePromiseWithLimit, type IExecutePromiseWithLimitOptions } from './utils/promise.ts';
