import { WebSocketErrorCodes, WebSocketEvents } from '../common/constants.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocketClient,
  IWebSocketMessage,
  TWebSocketMessageHandler,
} from '../common/types.ts';
import { fireAndLog, settleSoon, type TCallbackOutcome } from '../utils/safe-call.ts';
import { type InboundLimiter, MAX_REQUEST_ID_LENGTH } from './inbound-limits.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import { WebSocketRequestError } from './request-error.ts';

/** Built only when something is logged: a request's happy path makes no label. */
const labelOf = (event: string | undefined): string =>
  event === undefined ? 'messageHandler' : `handler for "${event}"`;

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

  // Kept as it was before the router, line for line: the path of every application without on()/use().
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

  /** An admitted request no router handler took: `messageHandler` answers it. */
  fallThrough(client: IWebSocketClient<M>, message: IWebSocketMessage, id: string): void {
    const { messageHandler } = this.opts;
    if (!messageHandler) {
      this.opts.reply(client, WebSocketEvents.REPLY, undefined, id);
      return;
    }
    this.respond(client, id, messageHandler, { clientId: client.id, userId: client.userId, message });
  }

  /** A frame without an id no router handler took: `messageHandler` gets it, nothing answers. */
  notify(client: IWebSocketClient<M>, message: IWebSocketMessage): void {
    fireAndLog(this.opts.logger, 'messageHandler', this.opts.messageHandler, {
      clientId: client.id,
      userId: client.userId,
      message,
    });
  }

  /** Checks the id and the pending limit; a refused request is answered here. */
  admit(client: IWebSocketClient<M>, id: string): boolean {
    if (id.length === 0 || id.length > MAX_REQUEST_ID_LENGTH) {
      this.opts.reply(
        client,
        WebSocketEvents.ERROR,
        {
          message: `A request id is a string of 1 to ${MAX_REQUEST_ID_LENGTH} characters`,
          code: WebSocketErrorCodes.INVALID_REQUEST,
        },
        // An empty id is still echoed (it identifies nothing else); an oversized one is not.
        id.length === 0 ? id : undefined,
      );
      return false;
    }
    return this.opts.limiter.mayStartRequest(client, id);
  }

  /** Runs an admitted request's handler and answers with what it returns or throws. */
  respond<A>(
    client: IWebSocketClient<M>,
    id: string,
    handler: (arg: A) => unknown,
    arg: A,
    /** The router's event, named in the logs; none for `messageHandler`. */
    event?: string,
  ): void {
    const outcome = settleSoon(handler, arg);
    if (!(outcome instanceof Promise)) {
      this.answer(client, id, outcome, event);
      return;
    }
    client.pendingRequests = (client.pendingRequests ?? 0) + 1;
    outcome.then((settled) => {
      client.pendingRequests = (client.pendingRequests ?? 1) - 1;
      if (this.opts.isConnected(client)) this.answer(client, id, settled, event);
    });
  }

  /** Answers a request with an error: a `WebSocketRequestError`'s own code, anything else `INTERNAL`. */
  refuse(client: IWebSocketClient<M>, id: string | undefined, error: unknown, label: string): void {
    if (error instanceof WebSocketRequestError) {
      replyError(this.opts.reply, client, error.code, error.message, id);
      return;
    }
    this.opts.logger.error(`${label} failed for client ${client.id}`, error);
    replyError(this.opts.reply, client, WebSocketErrorCodes.INTERNAL, 'The request failed', id);
  }

  private answer(
    client: IWebSocketClient<M>,
    id: string,
    outcome: TCallbackOutcome<unknown>,
    event?: string,
  ): void {
    if (outcome.ok) {
      try {
        this.opts.reply(client, WebSocketEvents.REPLY, outcome.value, id);
        return;
      } catch (error) {
        // A value JSON cannot carry (a BigInt, a cycle): the client still gets an answer.
        this.opts.logger.error(
          `${labelOf(event)} answer for client ${client.id} could not be serialized`,
          error,
        );
        outcome = { ok: false, error };
      }
    }
    this.refuse(client, id, (outcome as { ok: false; error: unknown }).error, labelOf(event));
  }
}
