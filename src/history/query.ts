import { WebSocketErrorCodes } from '../common/constants.ts';
import { isValidRoomName } from '../common/room-names.ts';
import { parseJsonSafely } from '../utils/json.ts';
import { HistoryError } from './errors.ts';
import { readHistoryQuery } from './policy.ts';
import type {
  IHistoryPage,
  IHistoryStore,
  IPublication,
  IResolvedHistoryPolicy,
  IStreamPosition,
} from './types.ts';

/** Arguments of `history()` on the helper and the emitter. */
export interface IHistoryOptions {
  room: string;
  since?: IStreamPosition;
  /** Most publications returned; default and maximum `WebSocketLimits.MAX_HISTORY_LIMIT`. */
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

/** What `history()` resolves to: the publications asked for and the room's current position. */
export interface IHistoryResult extends IStreamPosition {
  publications: IPublication[];
}

/**
 * Reads a room's history for the API or a client's `ws:history`. Rejects with a `HistoryError`
 * whose code is the one a client gets: bad arguments `INVALID_REQUEST`, no history or Redis
 * unreachable `HISTORY_UNAVAILABLE`, a `since` that cannot be served `UNRECOVERABLE_POSITION`.
 */
export async function queryHistory(
  store: IHistoryStore,
  policyFor: (room: string) => IResolvedHistoryPolicy | undefined,
  opts: IHistoryOptions,
  prefix: string,
): Promise<IHistoryPage> {
  const room = opts?.room;
  const query = isValidRoomName(room) ? readHistoryQuery(opts) : undefined;
  if (!query) {
    throw new HistoryError(
      WebSocketErrorCodes.INVALID_REQUEST,
      `${prefix} history expects { room, since?: { offset, epoch }, limit?: integer >= 0, reverse?: boolean }`,
    );
  }
  const policy = policyFor(room as string);
  if (!policy) {
    throw new HistoryError(
      WebSocketErrorCodes.HISTORY_UNAVAILABLE,
      `${prefix} room ${JSON.stringify(room)} keeps no history`,
    );
  }
  let page: IHistoryPage;
  try {
    page = await store.read(room as string, policy, query);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HistoryError(
      WebSocketErrorCodes.HISTORY_UNAVAILABLE,
      `${prefix} history could not be read: ${reason}`,
    );
  }
  if (!page.retained) {
    throw new HistoryError(
      WebSocketErrorCodes.UNRECOVERABLE_POSITION,
      `${prefix} the publications after ${JSON.stringify(query.since)} are no longer retained (current position ${page.offset}, epoch ${page.epoch})`,
    );
  }
  return page;
}

/** A page as the API returns it: payloads parsed. */
export function toHistoryResult(page: IHistoryPage): IHistoryResult {
  return {
    publications: page.publications.map((p) => ({
      offset: p.offset,
      event: p.event,
      data: p.dataJson === undefined ? undefined : parseJsonSafely(p.dataJson),
    })),
    offset: page.offset,
    epoch: page.epoch,
  };
}

/** The `ws:history` reply's data as JSON, built from the stored payloads without parsing them. */
export function historyReplyJson(page: IHistoryPage): string {
  const items = page.publications.map((p) => {
    const head = `{"offset":${p.offset},"event":${JSON.stringify(p.event)}`;
    return p.dataJson === undefined ? `${head}}` : `${head},"data":${p.dataJson}}`;
  });
  return `{"publications":[${items.join(',')}],"offset":${page.offset},"epoch":${JSON.stringify(page.epoch)}}`;
}
