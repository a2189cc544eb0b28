import type { WebSocketErrorCodes } from '../common/constants.ts';

export type THistoryErrorCode =
  | typeof WebSocketErrorCodes.HISTORY_UNAVAILABLE
  | typeof WebSocketErrorCodes.UNRECOVERABLE_POSITION
  | typeof WebSocketErrorCodes.INVALID_REQUEST;

/** What `history()` rejects with; `code` is the same one a client's `ws:history` would get. */
export class HistoryError extends Error {
  constructor(
    readonly code: THistoryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HistoryError';
  }
}
