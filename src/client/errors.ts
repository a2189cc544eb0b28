import type { TClientErrorCode, TServerErrorCode } from './types.ts';

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
