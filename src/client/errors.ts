export type TClientErrorCode =
  /** The server sent an `error` event. */
  | 'SERVER_ERROR'
  /** A frame that is not JSON, not an object or has no string `event`. */
  | 'BAD_FRAME'
  /** An `encrypted` frame that could not be decrypted or decoded. */
  | 'DECRYPT_FAILED'
  /** The key exchange after `connected` failed, or the server did not take part in it. */
  | 'HANDSHAKE_FAILED'
  /** A frame other than `encrypted` arrived in clear on an encrypted connection. It is skipped. */
  | 'PLAINTEXT_FRAME'
  /** An `encrypted` frame whose counter is not past the last one (replayed or reordered). It is skipped. */
  | 'REPLAYED_FRAME'
  /** The outbound queue was full; the message was dropped. */
  | 'QUEUE_OVERFLOW'
  /** `close()` discarded messages that were still queued. */
  | 'QUEUE_DISCARDED'
  /** The `auth` function threw or returned something that is not an object. */
  | 'AUTH_UNAVAILABLE'
  /** The server refused the connection (4003 / 4004) and no reconnect follows. */
  | 'REFUSED'
  /** `reconnect.maxAttempts` consecutive attempts failed. */
  | 'RECONNECT_EXHAUSTED'
  /** A join/leave, history or `request()` got no answer within its timeout. */
  | 'REQUEST_TIMEOUT'
  /** A `request()` was sent, then the connection dropped before its answer (it is not re-sent). */
  | 'CONNECTION_LOST'
  /** Rooms the server granted before were not granted again after a reconnect. */
  | 'REJOIN_DENIED'
  /** The client was closed while the operation was pending. */
  | 'CLOSED'
  /** The `url` function threw or returned something that is not a ws:// / wss:// URL. */
  | 'BAD_URL'
  /**
   * A sealed room's frame (`roomKeys`) of a generation whose key this client does not have (sealed
   * before it joined, or its key was lost); the frame is skipped.
   */
  | 'ROOM_KEY_MISSING'
  /** An application listener threw. */
  | 'LISTENER_FAILED';

/** `code` of a server `error` frame (`RoomcastClientError.serverCode`); see the README's error-code table. */
export type TServerErrorCode =
  | 'INVALID_FRAME'
  | 'NOT_AUTHENTICATED'
  | 'ALREADY_AUTHENTICATED'
  | 'AUTH_FAILED'
  | 'ENCRYPTION_REQUIRED'
  | 'RESERVED_EVENT'
  | 'INVALID_REQUEST'
  | 'TOO_MANY_ROOMS'
  | 'NOT_IN_ROOM'
  | 'HISTORY_UNAVAILABLE'
  | 'UNRECOVERABLE_POSITION'
  | 'TOO_MANY_REQUESTS'
  | 'TOO_MANY_PENDING'
  | 'PRESENCE_UNAVAILABLE'
  | 'RATE_LIMITED'
  | 'INTERNAL'
  // An application's own code, from a `WebSocketRequestError`.
  | (string & {});

/** Every problem the client reports carries a stable `code` to branch on. */
export class RoomcastClientError extends Error {
  override readonly name = 'RoomcastClientError';
  constructor(
    readonly code: TClientErrorCode,
    message: string,
    /** Extra facts: the server's error data, the dropped event, the raw frame... */
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** For `SERVER_ERROR`: the `code` of the server's `error` frame (e.g. `NOT_IN_ROOM`). */
  get serverCode(): TServerErrorCode | undefined {
    const code = (this.details as { code?: unknown } | undefined)?.code;
    return this.code === 'SERVER_ERROR' && typeof code === 'string' ? (code as TServerErrorCode) : undefined;
  }
}

/** The client error for a server `error` frame: `SERVER_ERROR` with the frame's message and data. */
export function serverError(data: unknown): RoomcastClientError {
  const message = (data as { message?: unknown } | undefined)?.message;
  return new RoomcastClientError(
    'SERVER_ERROR',
    typeof message === 'string' ? message : 'server error',
    data,
  );
}
