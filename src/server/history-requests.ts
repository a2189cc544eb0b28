import {
  WebSocketClientStates,
  WebSocketErrorCodes,
  WebSocketEvents,
  WebSocketLimits,
} from '../common/constants.ts';
import type { AnyRecord, IWebSocketClient } from '../common/types.ts';
import { HistoryError } from '../history/errors.ts';
import { historyReplyJson, queryHistory } from '../history/query.ts';
import { frameFromJson, isPlainObject } from '../utils/json.ts';
import { type LocalDelivery, replyError, type TSystemReply } from './local-delivery.ts';
import type { RoomHistory } from './room-history.ts';

export interface IHistoryRequestOptions<M extends object> {
  /** Absent without `historyFn`: every request is answered `HISTORY_UNAVAILABLE`. */
  history?: RoomHistory<M>;
  delivery: LocalDelivery<M>;
  reply: TSystemReply<M>;
}

const PREFIX = 'ws:history';

/**
 * A client's `ws:history { room, since?, limit?, reverse? }`: only for a room it is in; answered
 * `ws:history { publications, offset, epoch }` or an `error` with the documented code.
 */
export class HistoryRequests<M extends object = AnyRecord> {
  private readonly inFlight = new WeakMap<IWebSocketClient<M>, number>();

  constructor(private readonly opts: IHistoryRequestOptions<M>) {}

  async handle(client: IWebSocketClient<M>, data: unknown, id: string | undefined): Promise<void> {
    const refuse = (code: string, message: string): void =>
      replyError(this.opts.reply, client, code, message, id);
    if (!isPlainObject(data) || typeof data.room !== 'string') {
      refuse(WebSocketErrorCodes.INVALID_REQUEST, `${PREFIX} expects { room, since?, limit?, reverse? }`);
      return;
    }
    const room = data.room;
    if (!client.rooms.has(room)) {
      refuse(WebSocketErrorCodes.NOT_IN_ROOM, `not a member of room ${JSON.stringify(room)}`);
      return;
    }
    const { history } = this.opts;
    if (!history) {
      refuse(WebSocketErrorCodes.HISTORY_UNAVAILABLE, `room ${JSON.stringify(room)} keeps no history`);
      return;
    }
    const busy = this.inFlight.get(client) ?? 0;
    if (busy >= WebSocketLimits.MAX_HISTORY_REQUESTS_IN_FLIGHT) {
      refuse(
        WebSocketErrorCodes.TOO_MANY_REQUESTS,
        `at most ${WebSocketLimits.MAX_HISTORY_REQUESTS_IN_FLIGHT} ${PREFIX} requests at once`,
      );
      return;
    }
    this.inFlight.set(client, busy + 1);
    try {
      const page = await queryHistory(
        history.store,
        (name) => (name === client.id ? undefined : history.policyFor(name)),
        { room, since: data.since, limit: data.limit, reverse: data.reverse } as never,
        PREFIX,
      );
      if (client.state === WebSocketClientStates.DISCONNECTED) return;
      const json = historyReplyJson(page);
      const frame = frameFromJson(WebSocketEvents.HISTORY, json, id);
      // The parsed page only for an encrypted client (its transformer is handed `data`).
      const parsed = client.encrypted ? JSON.parse(json) : undefined;
      this.opts.delivery.toSocket(client, frame, WebSocketEvents.HISTORY, parsed, id);
    } catch (error) {
      if (error instanceof HistoryError) refuse(error.code, error.message);
      else {
        refuse(WebSocketErrorCodes.INTERNAL, `${PREFIX} failed`);
        throw error; // logged by the router (a throwing historyFn)
      }
    } finally {
      const left = (this.inFlight.get(client) ?? 1) - 1;
      if (left > 0) this.inFlight.set(client, left);
      else this.inFlight.delete(client);
    }
  }
}
