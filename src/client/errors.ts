import type { TClientErrorCode } from './types.ts';

/** Every problem the client reports carries a stable `code` to branch on. */
export class RoomcastClientError extends Error {
  override readonly name = 'RoomcastClientError';
  constructor(
    readonly code: TClientErrorCode,
    message: string,
    /** Extra facts: the server's error code, the dropped event, the raw frame... */
    readonly details?: unknown,
  ) {
    super(message);
  }
}
