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
  /** A client's request for a room's retained publications (see docs/recovery.md). */
  static readonly HISTORY = 'ws:history';

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

  /**
   * Prefix of every system event added beyond the eight above (history, presence,
   * acknowledgements, token refresh...). Application events may not start with it,
   * so a new system event can never take a name an application already uses.
   */
  static readonly SYSTEM_PREFIX = 'ws:';

  /**
   * Token refresh, both ways: the server asks (`{ expiresAt }`) before the
   * credentials expire; the client answers (or offers on its own) new
   * credentials, and the server confirms with the new `{ expiresAt? }`.
   */
  static readonly REFRESH = 'ws:refresh';

  /**
   * The server's answer to an application frame that carried an `id` (a request):
   * `{ event: 'ws:reply', data: <what messageHandler returned>, id }`. A failed request is
   * answered with `error` and the same id instead (see docs/cluster.md).
   */
  static readonly REPLY = 'ws:reply';
  /** A client's acknowledgement of a server frame that asked for one (`{ event: 'ws:ack', id }`). */
  static readonly ACK = 'ws:ack';
  /** A client's request for a presence room's members (`{ room }` → `{ room, members, clients, users }`). */
  static readonly PRESENCE = 'ws:presence';
  /** A client's opt-in (`{ room }`) to the join/leave events of a presence room it is in. */
  static readonly PRESENCE_SUBSCRIBE = 'ws:presence:subscribe';
  /** A client's opt-out of those events. */
  static readonly PRESENCE_UNSUBSCRIBE = 'ws:presence:unsubscribe';
  /** A member entered a presence room (`{ room, clientId, userId?, info? }`), once per change. */
  static readonly PRESENCE_JOIN = 'ws:presence:join';
  /** A member left a presence room (also when its instance died), once per change. */
  static readonly PRESENCE_LEAVE = 'ws:presence:leave';

  /** True for the eight system events and for any name under `SYSTEM_PREFIX`. */
  static isReserved(value: string): boolean {
    return WebSocketEvents.SCHEME_SET.has(value) || value.startsWith(WebSocketEvents.SYSTEM_PREFIX);
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
  /**
   * Default `redisCommandTimeout`: how long a Redis command of the helper's publishing connection or
   * the emitter's may wait for its answer before it fails as in an outage.
   */
  static readonly REDIS_COMMAND_TIMEOUT = 2_000;

  // Defaults of the `limits` option (per connection; each can be turned off).
  /** Sustained inbound frames per second (burst: twice this). */
  static readonly MESSAGES_PER_SECOND = 100;
  /** Sustained inbound bytes per second (burst: twice this). */
  static readonly BYTES_PER_SECOND = 1024 * 1024;
  /** Rooms one client may be in through its own `join` requests (its id room not counted). */
  static readonly MAX_ROOMS_PER_CLIENT = 500;
  /** Requests of one client the server may be working on at once (e.g. joins awaiting `validateRoomFn`). */
  static readonly MAX_PENDING_REQUESTS = 32;
  /** Refused frames (anything but `authenticate` / `heartbeat`) before authentication, then close. */
  static readonly MAX_UNAUTHENTICATED_FRAMES = 10;
  /** Refusals by any limit (within about `REFUSAL_WINDOW`) before the connection is closed. */
  static readonly CLOSE_AFTER_REFUSALS = 100;
  /** Milliseconds over which `closeAfterRefusals` refusals are forgotten (a leaky bucket drains at that pace). */
  static readonly REFUSAL_WINDOW = 60_000;
  /** How long before credentials expire the client is asked to refresh (at most half their lifetime). */
  static readonly TOKEN_REFRESH_LEAD = 30_000;
  /** Most publications one `ws:history` request or `history()` call returns (a larger `limit` is clamped). */
  static readonly MAX_HISTORY_LIMIT = 1_000;
  /** Largest `size` a `historyFn` policy may ask for. */
  static readonly MAX_HISTORY_SIZE = 100_000;
  /** Live publications held per room for a client while its recovery is read; past it, `recovered: false`. */
  static readonly RECOVERY_BUFFER_LIMIT = 1_000;
  /**
   * Live publications held for one client across all its recovering rooms; a room whose next one
   * would pass it is answered `recovered: false` (as past `RECOVERY_BUFFER_LIMIT`).
   */
  static readonly RECOVERY_BUFFER_LIMIT_PER_CLIENT = 5_000;
  /** Bound on reading a recovering join's history (and the Pub/Sub barrier) before answering `recovered: false`. */
  static readonly RECOVERY_TIMEOUT = 5_000;
  /** Most rooms of one client being recovered (or positioned) at once; a join past it gets `TOO_MANY_ROOMS`. */
  static readonly MAX_RECOVERING_ROOMS = 100;
  /** Most `ws:history` requests of one client in flight at once; more get `TOO_MANY_REQUESTS`. */
  static readonly MAX_HISTORY_REQUESTS_IN_FLIGHT = 4;

  // The Redis bus (see docs/cluster.md, "Bus limits and signing").
  /** Default `maxEnvelopeBytes`: largest bus message accepted from Redis or published to it (UTF-8 bytes). */
  static readonly MAX_ENVELOPE_BYTES = 1024 * 1024;
  /**
   * Default `maxPublishQueueBytes`: most of the publishing connection's publications waiting for Redis
   * at once (queued for the turn's batch, or sent and not answered yet), in characters of their envelopes.
   */
  static readonly MAX_PUBLISH_QUEUE_BYTES = 16 * 1024 * 1024;
  /** Deepest array/object nesting a bus message may have; a deeper one is dropped as malformed. */
  static readonly MAX_BUS_JSON_DEPTH = 128;
  /** Deepest array/object nesting a client's frame may have; a deeper one is refused (`INVALID_FRAME`). */
  static readonly MAX_FRAME_DEPTH = 128;
  /** Acknowledged messages relayed by other instances and waiting here, in all and per client. */
  static readonly MAX_RELAYED_ACKS = 10_000;
  static readonly MAX_RELAYED_ACKS_PER_CLIENT = 256;
  /** Longest a relayed acknowledged message is waited for here (a longer `timeout` is clamped). */
  static readonly MAX_RELAYED_ACK_TIMEOUT = 120_000;
  /**
   * Recipients whose answer one acknowledged send to many (`send({ ack: true })` to a room, a
   * user, everyone) waits for, per instance and in all for the caller; the others still get the
   * message, unawaited (`notAwaited`).
   */
  static readonly MAX_ACK_RECIPIENTS_PER_CALL = 1_000;
  /** Answers to acknowledged sends to many that one instance waits for at once (its calls and relayed ones). */
  static readonly MAX_PENDING_ACK_ANSWERS = 10_000;
  /** Largest answer (UTF-8 bytes of its JSON) an acknowledgement may carry; a larger one is refused. */
  static readonly MAX_ACK_ANSWER_BYTES = 16 * 1024;
}

/** Defaults of the history feature (see docs/recovery.md). */
export class WebSocketHistoryDefaults {
  /** Prefix of the Redis keys that hold a room's position (`…:meta`) and publications (`…:stream`). */
  static readonly KEY_PREFIX = 'ws:history:';
  /**
   * How long a room's position (offset + epoch) outlives its last publication when the policy gives
   * no `metaTtl`: a quiet room keeps its epoch, so clients can still tell they missed nothing.
   */
  static readonly META_TTL = 24 * 60 * 60 * 1000;
}

/** Defaults of presence (see docs/cluster.md). */
export class WebSocketPresenceDefaults {
  /**
   * How long (ms) an instance's presence members stay valid after its last heartbeat (sent every
   * third of it): a SIGKILLed instance's members vanish from `presence()` within this, and their
   * leave events follow within another third.
   */
  static readonly TTL = 30_000;
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

/**
 * Machine-readable `code` of every `error` frame (`{ message, code, closeCode? }`).
 * `message` is for people and may change; `code` is stable. `closeCode` is set
 * when the server closes the connection right after the error.
 */
export class WebSocketErrorCodes {
  /** Binary frame, invalid JSON, not an object, or no string `event`. */
  static readonly INVALID_FRAME = 'INVALID_FRAME';
  /** Anything but `authenticate` / `heartbeat` before authentication. */
  static readonly NOT_AUTHENTICATED = 'NOT_AUTHENTICATED';
  /** A second `authenticate`, or one while the first is still being checked. */
  static readonly ALREADY_AUTHENTICATED = 'ALREADY_AUTHENTICATED';
  /** `authenticateFn` refused or threw (close 4003 follows). */
  static readonly AUTH_FAILED = 'AUTH_FAILED';
  /** Encryption required and the handshake failed (close 4004 follows). */
  static readonly ENCRYPTION_REQUIRED = 'ENCRYPTION_REQUIRED';
  /** A client sent a system event it may not send, or an unknown `ws:` event. */
  static readonly RESERVED_EVENT = 'RESERVED_EVENT';
  /** A system request whose `data` has the wrong shape. */
  static readonly INVALID_REQUEST = 'INVALID_REQUEST';
  /** A `join` / `leave` naming more than `MAX_ROOMS_PER_REQUEST` rooms. */
  static readonly TOO_MANY_ROOMS = 'TOO_MANY_ROOMS';
  /** The request needs a room the client is not a member of. */
  static readonly NOT_IN_ROOM = 'NOT_IN_ROOM';
  /** Over the frame or byte rate of `limits`: the frame was dropped. */
  static readonly RATE_LIMITED = 'RATE_LIMITED';
  /** The join would put the client in more than `limits.maxRoomsPerClient` rooms: nothing joined. */
  static readonly ROOM_LIMIT = 'ROOM_LIMIT';
  /** The join would put the connections of this client's address past the component's `clientCaps.maxRoomsPerAddress`. */
  static readonly ADDRESS_ROOM_LIMIT = 'ADDRESS_ROOM_LIMIT';
  /** The join would put the connections of this user past the component's `clientCaps.maxRoomsPerUser`. */
  static readonly USER_ROOM_LIMIT = 'USER_ROOM_LIMIT';
  /** More than `limits.maxPendingRequests` requests of this client in progress: refused. */
  static readonly TOO_MANY_PENDING = 'TOO_MANY_PENDING';
  /** The credentials expired without a successful refresh (close 4006 follows). */
  static readonly TOKEN_EXPIRED = 'TOKEN_EXPIRED';
  /** The room keeps no history, or its history cannot be read right now (Redis down). */
  static readonly HISTORY_UNAVAILABLE = 'HISTORY_UNAVAILABLE';
  /** A `ws:history` `since` whose epoch differs, or whose publications are no longer all retained. */
  static readonly UNRECOVERABLE_POSITION = 'UNRECOVERABLE_POSITION';
  /** Too many `ws:history` requests of one client in flight at once. */
  static readonly TOO_MANY_REQUESTS = 'TOO_MANY_REQUESTS';
  /** The room keeps no presence, or presence cannot be read right now (Redis down). */
  static readonly PRESENCE_UNAVAILABLE = 'PRESENCE_UNAVAILABLE';
  /** A server-side handler failed; no detail of the failure is sent. */
  static readonly INTERNAL = 'INTERNAL';
}

/** Close codes the server uses. */
export class WebSocketCloseCodes {
  static readonly GOING_AWAY = 1001;
  /** A draining instance asks its clients to reconnect (to another instance). */
  static readonly SERVICE_RESTART = 1012;
  static readonly AUTH_TIMEOUT = 4001;
  static readonly HEARTBEAT_TIMEOUT = 4002;
  static readonly AUTH_FAILED = 4003;
  static readonly ENCRYPTION_REQUIRED = 4004;
  /** A client kept exceeding `limits` (rate, rooms, pending requests, frames before authentication). */
  static readonly LIMIT_EXCEEDED = 4005;
  /** The credentials expired and were not refreshed in time, or the refresh was refused. */
  static readonly TOKEN_EXPIRED = 4006;
  /** The component's `clientCaps.maxConnectionsPerAddress`: the address already has that many sockets open. */
  static readonly TOO_MANY_CONNECTIONS = 4007;
  /**
   * Closed by `disconnect({ reconnect: false })` (helper, emitter, server commands): the client
   * SDK stops for good (state `disconnected`, no reconnect) until the application calls
   * `connect()` or `reconnect()`.
   */
  static readonly NO_RECONNECT = 4008;
}
