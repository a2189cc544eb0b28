/**
 * What a `messageHandler` throws to answer a request with an error the client may see: the
 * `code` and `message` go out as they are. Anything else a handler throws (or rejects with)
 * is answered with `INTERNAL` and a fixed message, so no stack or internal detail leaks.
 */
export class WebSocketRequestError extends Error {
  override readonly name = 'WebSocketRequestError';
  constructor(
    /** Machine-readable, chosen by the application (e.g. `FORBIDDEN`, `NOT_FOUND`). */
    readonly code: string,
    /** Sent to the client: keep it free of secrets. */
    message: string,
  ) {
    super(message);
    if (typeof code !== 'string' || code.length === 0) {
      throw new TypeError('[WebSocketRequestError] code must be a non-empty string');
    }
  }
}
