// Package root: the server helper, the emitter, Redis helpers, crypto and utilities.

/**
 * The server helper, the emitter, the Redis helpers, crypto and utilities.
 *
 * @packageDocumentation
 * @module roomcast
 */

export type { IConnectionInfo } from './bus/commands.ts';
export * from './common/constants.ts';
export type { ILogFields, IStructuredLogger } from './common/log.ts';
export { createConsoleLogger, silentLogger } from './common/logger.ts';
export { isValidRoomName } from './common/room-names.ts';
export { assertBunRuntime, isBunRuntime } from './common/runtime.ts';
export type * from './common/types.ts';
export {
  DEFAULT_HKDF_INFO,
  type ICipherOptions,
  type IECDHKeyPair,
  type IECDHOptions,
  type IEncryptedPayload,
  type TECDHAlgorithm,
  type TSecret,
} from './crypto/ecdh.ts';
// The server's ECDH: the WebCrypto methods plus the raw-key, native-cipher ones.
export { ECDH } from './crypto/ecdh-native.ts';
export {
  createEcdhEncryption,
  generateEncryptionKey,
  type IEcdhEncryption,
  type IEcdhEncryptionOptions,
} from './crypto/ecdh-session.ts';
export type { IWebSocketEmitterOptions } from './emitter/options.ts';
export { WebSocketEmitter } from './emitter/websocket-emitter.ts';
export { FLEET_INDEX_KEY, fleetInstanceKey } from './fleet/keys.ts';
export { FLEET_MAX_INSTANCES, fleetTopRooms, readFleet } from './fleet/reader.ts';
export type { IFleetInstance, IFleetOptions, IFleetRates, IFleetRoom } from './fleet/types.ts';
export { ROOMCAST_VERSION } from './fleet/version.ts';
export { HistoryError, type THistoryErrorCode } from './history/errors.ts';
export { clusterHashTag, historyKeys, type IHistoryKeys } from './history/keys.ts';
export type { IHistoryOptions, IHistoryResult } from './history/query.ts';
export type {
  IHistoryPolicy,
  IPublication,
  IStreamPosition,
  THistoryFn,
} from './history/types.ts';
export { ServerCounters } from './metrics/counters.ts';
export {
  DEFAULT_METRICS_PREFIX,
  type IMetricsOptions,
  type IMetricsSources,
  PrometheusMetrics,
} from './metrics/prometheus.ts';
export { MemoryPresenceStore } from './presence/memory-store.ts';
export { RedisPresenceStore } from './presence/redis-store.ts';
export type {
  IPresenceMember,
  IPresenceStats,
  IPresenceStore,
  TPresenceFn,
  TPresenceInfoFn,
} from './presence/types.ts';
export {
  DefaultRedisHelper,
  type IDefaultRedisHelperOptions,
  type IRedisHelperCallbacks,
} from './redis/default-redis-helper.ts';
export { type IRedisClusterHelperOptions, RedisClusterHelper } from './redis/redis-cluster-helper.ts';
export { type IRedisHelperOptions, RedisHelper } from './redis/redis-helper.ts';
export { waitForRedisReady } from './redis/wait-ready.ts';
export type { IRoomKeysStats, RoomKeys } from './room-keys/room-keys.ts';
export { type IRoomKeysOptions, RoomKeyEvents } from './room-keys/types.ts';
export { AckAnswers } from './server/ack-answers.ts';
export { type TAckErrorCode, WebSocketAckError } from './server/acknowledgements.ts';
export {
  ConnectionRateLimiter,
  connectionRateRefusedResponse,
  DEFAULT_CONNECTION_RATE,
  type IConnectionRateOptions,
} from './server/connection-rate.ts';
export type { IShutdownOptions } from './server/drain.ts';
export {
  type IEventContext,
  type IEventRouter,
  MAX_HELD_EVENTS,
  type TEventHandler,
  type TEventMiddleware,
  type TRouterEventName,
  type TRouterReply,
  type TServerEventMap,
} from './server/event-router.ts';
export type { IWebSocketLimitsOptions } from './server/inbound-limits.ts';
export type { IWebSocketServerOptions } from './server/options.ts';
export {
  createOriginCheck,
  isOriginAllowed,
  type TAllowedOrigins,
  type TOriginCheck,
} from './server/origin-policy.ts';
export { WebSocketRequestError } from './server/request-error.ts';
export type { ICommandResult, IInspectResult } from './server/server-commands.ts';
export { parseCookies } from './server/upgrade.ts';
export {
  type IBunUpgradingServer,
  type ISendOptions,
  WebSocketServerHelper,
} from './server/websocket-server-helper.ts';
export { executePromiseWithLimit, type IExecutePromiseWithLimitOptions } from './utils/promise.ts';
