/**
 * Binding keys the WebSocket component reads. The strings are part of the
 * public contract: applications may bind by the literal key as well.
 */
export class WebSocketBindingKeys {
  /** `Partial<IServerOptions>`, merged over the defaults. Optional. */
  static readonly SERVER_OPTIONS = '@app/websocket/server-options';
  /** A Redis helper (anything with `getClient()`). Optional: without it, single-instance mode. */
  static readonly REDIS_CONNECTION = '@app/websocket/redis-connection';
  /** `TWebSocketAuthenticateFn`. Required. */
  static readonly AUTHENTICATE_HANDLER = '@app/websocket/authenticate-handler';
  /** `TWebSocketValidateRoomFn`. Optional: without it every join is refused. */
  static readonly VALIDATE_ROOM_HANDLER = '@app/websocket/validate-room-handler';
  static readonly CLIENT_CONNECTED_HANDLER = '@app/websocket/client-connected-handler';
  static readonly CLIENT_DISCONNECTED_HANDLER = '@app/websocket/client-disconnected-handler';
  static readonly MESSAGE_HANDLER = '@app/websocket/message-handler';
  static readonly OUTBOUND_TRANSFORMER = '@app/websocket/outbound-transformer';
  /** `TWebSocketHandshakeFn`. Needed when `requireEncryption` is on. */
  static readonly HANDSHAKE_HANDLER = '@app/websocket/handshake-handler';
  /** `THistoryFn`: which rooms keep a history (see docs/recovery.md). Optional: without it, none. */
  static readonly HISTORY_HANDLER = '@app/websocket/history-handler';
  /** `TPresenceFn`: which rooms keep presence (see docs/cluster.md). Optional: without it, none. */
  static readonly PRESENCE_HANDLER = '@app/websocket/presence-handler';
  /** `TPresenceInfoFn`: what a presence member exposes of its client. Optional. */
  static readonly PRESENCE_INFO_HANDLER = '@app/websocket/presence-info-handler';
  /** The running `WebSocketServerHelper`; bound by the component once the server listens. */
  static readonly WEBSOCKET_INSTANCE = '@app/websocket/instance';
}
