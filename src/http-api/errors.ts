import { HistoryError } from '../history/errors.ts';

/**
 * The error codes of the HTTP API (`{ "error": { "code", "message" } }`), each with its HTTP
 * status. Stable: a client may branch on them (see docs/http-api.md).
 */
export const HttpApiErrorCodes = Object.freeze({
  /** No `Authorization: Bearer <key>`, or a key that is not one of the API's keys. */
  UNAUTHORIZED: 401,
  /** The body is not JSON. */
  INVALID_JSON: 400,
  /** The request does not match the route's schema (the message says where). */
  INVALID_REQUEST: 400,
  /** A batch with more requests than `maxBatch`. */
  BATCH_TOO_LARGE: 400,
  /** The body is larger than `maxBodyBytes`. */
  PAYLOAD_TOO_LARGE: 413,
  /** The message would be larger than `maxEnvelopeBytes` on the bus: nothing was published. */
  MESSAGE_TOO_LARGE: 413,
  /** Over the key's request rate (`rate`); `Retry-After` says when to try again. */
  RATE_LIMITED: 429,
  /** No such route. */
  NOT_FOUND: 404,
  /** The room keeps no history (per `historyFn`), or the API was given no `historyFn`. */
  HISTORY_UNAVAILABLE: 409,
  /** A `since` position whose epoch differs or whose publications are no longer all retained. */
  UNRECOVERABLE_POSITION: 409,
  /** Redis is not connected or did not answer: nothing was done (or it is unknown whether it was). */
  REDIS_UNAVAILABLE: 503,
  /** The route needs what this API was not given (`GET /connections`: an instance's helper, see `connections`). */
  NOT_AVAILABLE: 501,
  /** Anything else; the message carries no detail of the failure. */
  INTERNAL: 500,
});

export type THttpApiErrorCode = keyof typeof HttpApiErrorCodes;

export const HTTP_API_ERROR_CODES = Object.keys(HttpApiErrorCodes) as THttpApiErrorCode[];

/** A refusal with a documented code; the API answers it as `{ error: { code, message } }`. */
export class HttpApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: THttpApiErrorCode,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpApiError';
    this.status = HttpApiErrorCodes[code];
  }
}

/** The JSON body of an error answer. */
export function errorBody(
  code: THttpApiErrorCode,
  message: string,
): {
  error: { code: THttpApiErrorCode; message: string };
} {
  return { error: { code, message } };
}

const REDIS_FAILURE =
  /Redis is not connected|not configured|Connection is closed|ECONNREFUSED|ETIMEDOUT|Command timed out|did not answer|CLUSTERDOWN|MOVED|TRYAGAIN/i;

/**
 * What an error thrown by the emitter, the stores or Redis is answered with. The emitter's own
 * argument checks (the schemas catch nearly all before) are `INVALID_REQUEST`; nothing unknown
 * leaks its message.
 */
export function toHttpApiError(error: unknown): HttpApiError {
  if (error instanceof HttpApiError) return error;
  if (error instanceof HistoryError) {
    const code =
      error.code === 'UNRECOVERABLE_POSITION' || error.code === 'HISTORY_UNAVAILABLE'
        ? error.code
        : 'INVALID_REQUEST';
    // Redis down while reading history is a HISTORY_UNAVAILABLE with the reason in the message.
    if (code === 'HISTORY_UNAVAILABLE' && REDIS_FAILURE.test(error.message)) {
      return new HttpApiError('REDIS_UNAVAILABLE', stripPrefix(error.message));
    }
    return new HttpApiError(code, stripPrefix(error.message));
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/maxEnvelopeBytes/.test(message)) return new HttpApiError('MESSAGE_TOO_LARGE', stripPrefix(message));
  if (REDIS_FAILURE.test(message)) return new HttpApiError('REDIS_UNAVAILABLE', stripPrefix(message));
  if (message.startsWith('[WebSocketEmitter]'))
    return new HttpApiError('INVALID_REQUEST', stripPrefix(message));
  return new HttpApiError('INTERNAL', 'the request failed');
}

function stripPrefix(message: string): string {
  return message.replace(/^\[[A-Za-z]+\]\s*/, '');
}
