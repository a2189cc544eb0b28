/**
 * Protocol constants. The string values are part of the wire protocol and of the
 * Redis channel layout, so changing any of them breaks interoperability between
 * instances, emitters and clients.
 */

export class WebSocketEvents {
  static readonly AUTHENTICATE = 'authenticate';
  static readonly CONNECTED = 'connected';
  static readonly DISCONNECT = 'disconnect';
  static readonly JOIN = 'join';
  static readonly LEAVE = 'leave';
  static readonly ERROR = 'error';
  static readonly HEARTBEAT = 'heartbeat';
  static readonly ENCRYPTED = 'encrypted';

  /** Every system event; a client frame carrying one of these never reaches `messageHandler`. */
  static readonly SCHEME_SET: ReadonlySet<string> = new Set([
    WebSocketEvents.AUTHENTICATE,
    WebSocketEvents.CONNECTED,
    WebSocketEvents.DISCONNECT,
    WebSocketEvents.JOIN,
    WebSocketEvents.LEAVE,
    WebSocketEvents.ERROR,
    WebSocketEvents.HEARTBEAT,
    WebSocketEvents.ENCRYPTED,
  ]);

  static isValid(value: unknown): value is TWebSocketEvent {
    return typeof value === 'string' && WebSocketEvents.SCHEME_SET.has(value);
  }
}

export type TWebSocketEvent =
  | typeof WebSocketEvents.AUTHENTICATE
  | typeof WebSocketEvents.CONNECTED
  | typeof WebSocketEvents.DISCONNECT
  | typeof WebSocketEvents.JOIN
  | typeof WebSocketEvents.LEAVE
  | typeof WebSocketEvents.ERROR
  | typeof WebSocketEvents.HEARTBEAT
  | typeof WebSocketEvents.ENCRYPTED;

export class WebSocketChannels {
  static readonly BROADCAST = 'ws:broadcast';
  static readonly ROOM_PREFIX = 'ws:room:';
  static readonly CLIENT_PREFIX = 'ws:client:';
  static readonly USER_PREFIX = 'ws:user:';

  static forRoom(opts: { room: string }): string {
    return WebSocketChannels.ROOM_PREFIX + opts.room;
  }

  static forClient(opts: { clientId: string }): string {
    return WebSocketChannels.CLIENT_PREFIX + opts.clientId;
  }

  static forUser(opts: { userId: string }): string {
    return WebSocketChannels.USER_PREFIX + opts.userId;
  }

  static forRoomPattern(): string {
    return `${WebSocketChannels.ROOM_PREFIX}*`;
  }

  static forClientPattern(): string {
    return `${WebSocketChannels.CLIENT_PREFIX}*`;
  }

  static forUserPattern(): string {
    return `${WebSocketChannels.USER_PREFIX}*`;
  }
}

export class WebSocketDefaults {
  static readonly PATH = '/ws';
  static readonly ROOM = 'ws-default';
  static readonly NOTIFICATION_ROOM = 'ws-notification';
  static readonly BROADCAST_TOPIC = 'ws:internal:broadcast';
  static readonly MAX_PAYLOAD_LENGTH = 128 * 1024;
  static readonly IDLE_TIMEOUT = 60;
  static readonly BACKPRESSURE_LIMIT = 1024 * 1024;
  static readonly SEND_PINGS = true;
  static readonly PUBLISH_TO_SELF = false;
  static readonly AUTH_TIMEOUT = 5_000;
  static readonly HEARTBEAT_INTERVAL = 30_000;
  static readonly HEARTBEAT_TIMEOUT = 90_000;
  static readonly ENCRYPTED_BATCH_LIMIT = 10;
}

/** Limits this project adds on top of the documented defaults (see README, "Limits"). */
export class WebSocketLimits {
  /** Longest accepted room name. */
  static readonly MAX_ROOM_NAME_LENGTH = 256;
  /** Prefix reserved for internal topics and Redis channels. */
  static readonly RESERVED_ROOM_PREFIX = 'ws:';
  /** Most rooms one `join` / `leave` request may name; a longer list is refused whole. */
  static readonly MAX_ROOMS_PER_REQUEST = 100;
  /** Bound on how long `configure()` waits for each Redis connection. */
  static readonly REDIS_READY_TIMEOUT = 30_000;
}

export class WebSocketMessageTypes {
  static readonly CLIENT = 'client';
  static readonly USER = 'user';
  static readonly ROOM = 'room';
  static readonly BROADCAST = 'broadcast';

  static readonly SCHEME_SET: ReadonlySet<string> = new Set([
    WebSocketMessageTypes.CLIENT,
    WebSocketMessageTypes.USER,
    WebSocketMessageTypes.ROOM,
    WebSocketMessageTypes.BROADCAST,
  ]);

  static isValid(value: unknown): value is TWebSocketMessageType {
    return typeof value === 'string' && WebSocketMessageTypes.SCHEME_SET.has(value);
  }
}

export type TWebSocketMessageType =
  | typeof WebSocketMessageTypes.CLIENT
  | typeof WebSocketMessageTypes.USER
  | typeof WebSocketMessageTypes.ROOM
  | typeof WebSocketMessageTypes.BROADCAST;

export class WebSocketClientStates {
  static readonly UNAUTHORIZED = 'unauthorized';
  static readonly AUTHENTICATING = 'authenticating';
  static readonly AUTHENTICATED = 'authenticated';
  static readonly DISCONNECTED = 'disconnected';

  static readonly SCHEME_SET: ReadonlySet<string> = new Set([
    WebSocketClientStates.UNAUTHORIZED,
    WebSocketClientStates.AUTHENTICATING,
    WebSocketClientStates.AUTHENTICATED,
    WebSocketClientStates.DISCONNECTED,
  ]);

  static isValid(value: unknown): value is TWebSocketClientState {
    return typeof value === 'string' && WebSocketClientStates.SCHEME_SET.has(value);
  }
}

export type TWebSocketClientState =
  | typeof WebSocketClientStates.UNAUTHORIZED
  | typeof WebSocketClientStates.AUTHENTICATING
  | typeof WebSocketClientStates.AUTHENTICATED
  | typeof WebSocketClientStates.DISCONNECTED;

/** Close codes the server uses. */
export class WebSocketCloseCodes {
  static readonly GOING_AWAY = 1001;
  static readonly AUTH_TIMEOUT = 4001;
  static readonly HEARTBEAT_TIMEOUT = 4002;
  static readonly AUTH_FAILED = 4003;
  static readonly ENCRYPTION_REQUIRED = 4004;
}
