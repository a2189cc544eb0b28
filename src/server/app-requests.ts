import { WebSocketErrorCodes, WebSocketEvents } from '../common/constants.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocketClient,
  IWebSocketMessage,
  TWebSocketMessageHandler,
} from '../common/types.ts';
import { settleSoon, type TCallbackOutcome } from '../utils/safe-call.ts';
import type { InboundLimiter } from './inbound-limits.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import { WebSocketRequestError } from './request-error.ts';

/** Longest request id accepted; a longer one is refused with INVALID_REQUEST (it is echoed back). */
export const MAX_REQUEST_ID_LENGTH = 128;

export interface IAppRequestOptions<M extends object> {
  messageHandler?: TWebSocketMessageHandler;
  logger: ILogger;
  reply: TSystemReply<M>;
  limiter: InboundLimiter;
  /** False once the client is gone: its answer is dropped. */
  isConnected: (client: IWebSocketClient<M>) => boolean;
}

/**
 * An application frame that carries an `id` is a request: what `messageHandler` returns
 * (or resolves to) answers it with `ws:reply`, what it throws with an `error` frame carrying
 * the same id. Handlers still running count against `limits.maxPendingRequests`.
 */
export class AppRequests<M extends object = AnyRecord> {
  constructor(private readonly opts: IAppRequestOptions<M>) {}

  handle(client: IWebSocketClient<M>, message: IWebSocketMessage, id: string): void {
    const { limiter, reply, messageHandler } = this.opts;
    if (id.length === 0 || id.length > MAX_REQUEST_ID_LENGTH) {
      reply(
        client,
        WebSocketEvents.ERROR,
        {
          message: `A request id is a string of 1 to ${MAX_REQUEST_ID_LENGTH} characters`,
          code: WebSocketErrorCodes.INVALID_REQUEST,
        },
        // An empty id is still echoed (it identifies nothing else); an oversized one is not.
        id.length === 0 ? id : undefined,
      );
      return;
    }
    if (!limiter.mayStartRequest(client, id)) return;
    if (!messageHandler) {
      reply(client, WebSocketEvents.REPLY, undefined, id);
      return;
    }
    const outcome = settleSoon(messageHandler, { clientId: client.id, userId: client.userId, message });
    if (!(outcome instanceof Promise)) {
      this.answer(client, id, outcome);
      return;
    }
    client.pendingRequests = (client.pendingRequests ?? 0) + 1;
    outcome.then((settled) => {
      client.pendingRequests = (client.pendingRequests ?? 1) - 1;
      if (this.opts.isConnected(client)) this.answer(client, id, settled);
    });
  }

  private answer(client: IWebSocketClient<M>, id: string, outcome: TCallbackOutcome<unknown>): void {
    const { reply, logger } = this.opts;
    if (outcome.ok) {
      try {
        reply(client, WebSocketEvents.REPLY, outcome.value, id);
        return;
      } catch (error) {
        // A value JSON cannot carry (a BigInt, a cycle): the client still gets an answer.
        logger.error(`messageHandler answer for client ${client.id} could not be serialized`, error);
        outcome = { ok: false, error };
      }
    }
    const { error } = outcome as { ok: false; error: unknown };
    if (error instanceof WebSocketRequestError) {
      replyError(reply, client, error.code, error.message, id);
      return;
    }
    logger.error(`messageHandler failed for client ${client.id}`, error);
    replyError(reply, client, WebSocketErrorCodes.INTERNAL, 'The request failed', id);
  }
}
