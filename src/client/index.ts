// The roomcast client: runs unchanged in browsers, Bun and Node >= 22. It must
// import nothing from Bun, Node or the server code (a test checks the bundle).

/**
 * The client SDK, for browsers, Bun and Node >= 22.
 *
 * @packageDocumentation
 * @module roomcast/client
 */

export { createClient, RoomcastClient } from './client.ts';
export { RoomcastClientError } from './errors.ts';
export { MAX_ROOMS_PER_REQUEST } from './room-requests.ts';
export type {
  IClientSystemEvents,
  ICloseInfo,
  IConnectedInfo,
  IDisconnectInfo,
  IEncryptionOptions,
  IHistoryOptions,
  IHistoryPublication,
  IHistoryResult,
  IPresenceEvent,
  IPresenceMember,
  IPresenceResult,
  IPublicationInfo,
  IReconnectOptions,
  IRoomcastClientOptions,
  IRoomRecovery,
  IStateChange,
  IStreamPosition,
  IUrlContext,
  IWebSocketLike,
  TAuthSource,
  TClientErrorCode,
  TConnectionState,
  TEmitArgs,
  TEventMap,
  TListenMap,
  TOutgoingName,
  TServerErrorCode,
  TSystemEventName,
  TUrlSource,
  TWebSocketConstructor,
} from './types.ts';
