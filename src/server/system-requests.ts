import { WebSocketErrorCodes, WebSocketEvents } from '../common/constants.ts';
import type { IWebSocketClient } from '../common/types.ts';
import type { Acknowledgements } from './acknowledgements.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import type { RoomPresence } from './room-presence.ts';

export type TSystemRequest<M extends object> = (
  client: IWebSocketClient<M>,
  data: unknown,
  id?: string,
) => void;

/**
 * The `ws:` requests of the cluster API, by event name: acknowledgements, and the presence
 * requests (answered `PRESENCE_UNAVAILABLE` when `presenceFn` is off, like a room without presence).
 */
export function clusterSystemRequests<M extends object>(
  acks: Acknowledgements<M>,
  presence: RoomPresence<M> | undefined,
  reply: TSystemReply<M>,
): Map<string, TSystemRequest<M>> {
  const unavailable: TSystemRequest<M> = (client, _data, id) =>
    replyError(reply, client, WebSocketErrorCodes.PRESENCE_UNAVAILABLE, 'This server keeps no presence', id);
  return new Map<string, TSystemRequest<M>>([
    [WebSocketEvents.ACK, (client, data, id) => acks.acknowledge(client, id, data)],
    [
      WebSocketEvents.PRESENCE,
      presence ? (client, data, id) => void presence.handleRequest(client, data, id) : unavailable,
    ],
    [
      WebSocketEvents.PRESENCE_SUBSCRIBE,
      presence ? (client, data, id) => presence.handleSubscription(client, data, id, true) : unavailable,
    ],
    [
      WebSocketEvents.PRESENCE_UNSUBSCRIBE,
      presence ? (client, data, id) => presence.handleSubscription(client, data, id, false) : unavailable,
    ],
  ]);
}
