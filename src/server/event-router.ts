import { WebSocketErrorCodes, WebSocketEvents } from '../common/constants.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocketClient,
  IWebSocketMessage,
  ValueOrPromise,
} from '../common/types.ts';
import { fireAndLog, isThenable } from '../utils/safe-call.ts';
import type { AppRequests } from './app-requests.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';

/**
 * Event name → payload, as the client SDK's `RoomcastClient<In, Out>` takes it: the same map types
 * the client's `Out` (what it emits) and the server's router. Interfaces work too.
 */
export type TServerEventMap = Record<string, unknown>;

/** Names the protocol keeps for itself; no router handler can be registered for them. */
export type TReservedEventName =
  | 'authenticate'
  | 'connected'
  | 'disconnect'
  | 'join'
  | 'leave'
  | 'error'
  | 'heartbeat'
  | 'encrypted'
  | `ws:${string}`;

/** The app events of a map: its string keys but the reserved names. */
export type TRouterEventName<In extends object> = Exclude<keyof In & string, TReservedEventName>;

/** What a handler's return value answers a request with: `Replies[K]` when the map names it. */
export type TRouterReply<Replies extends object, K extends string> = K extends keyof Replies
  ? Replies[K]
  : unknown;

/** One inbound app event of an authenticated client, as middleware and handlers see it. */
export interface IEventContext<
  Data = unknown,
  M extends object = AnyRecord,
  State extends object = AnyRecord,
> {
  event: string;
  data: Data;
  /** Set when the frame is a request (the client expects an answer). */
  id?: string;
  clientId: string;
  userId?: string;
  /** What `authenticateFn` returned as `metadata`. */
  metadata?: M;
  /** The connection itself (rooms, encryption, state): read it, do not keep it. */
  client: IWebSocketClient<M>;
  /** Per-call scratch space: what a middleware puts here the next ones and the handler read. */
  state: Partial<State>;
}

/**
 * Runs before the handlers (and before `messageHandler`) for every inbound app event. Throw (or
 * reject with) a `WebSocketRequestError` to refuse the event with its code; anything else thrown
 * refuses it with `INTERNAL`. A promise holds the connection's later events until it settles.
 */
export type TEventMiddleware<M extends object = AnyRecord, State extends object = AnyRecord> = (
  context: IEventContext<unknown, M, State>,
) => ValueOrPromise<unknown>;

export type TEventHandler<
  In extends object,
  Replies extends object,
  K extends string,
  M extends object = AnyRecord,
  State extends object = AnyRecord,
> = (
  context: IEventContext<K extends keyof In ? In[K] : unknown, M, State>,
) => ValueOrPromise<TRouterReply<Replies, K>>;

/** `helper.on` / `helper.use`, typed by the event maps shared with the client. */
export interface IEventRouter<
  In extends object = TServerEventMap,
  Replies extends object = TServerEventMap,
  M extends object = AnyRecord,
  State extends object = AnyRecord,
> {
  /**
   * Handles one app event; returns a function that removes the handler. What the handler returns
   * (or resolves to) answers a request; a thrown `WebSocketRequestError` refuses it with its code.
   * One handler per event; events without one go to `messageHandler`.
   */
  on<K extends TRouterEventName<In>>(event: K, handler: TEventHandler<In, Replies, K, M, State>): () => void;
  /** Adds a middleware, run in registration order; returns a function that removes it. */
  use(middleware: TEventMiddleware<M, State>): () => void;
}

export interface IEventDispatchOptions<M extends object> {
  requests: AppRequests<M>;
  reply: TSystemReply<M>;
  logger: ILogger;
  /** False once the client is gone: its held events are dropped. */
  isConnected: (client: IWebSocketClient<M>) => boolean;
  /** Called once, when the first handler or middleware is registered. */
  activate: () => void;
}

/** Events one connection may have waiting behind an async middleware; more are refused. */
export const MAX_HELD_EVENTS = 256;

// biome-ignore lint/suspicious/noExplicitAny: handlers are stored untyped, typed at registration
type TAnyHandler = (context: IEventContext<any, any, any>) => unknown;

/**
 * The server-side router: middleware then a handler per event name, beside `messageHandler`.
 * The inbound router reaches it only once something was registered, so an application that
 * uses neither `on()` nor `use()` pays nothing per frame.
 *
 * Order: a connection's events reach their handlers in the order they arrived. While an async
 * middleware runs for one event, that connection's later events wait behind it (at most
 * `MAX_HELD_EVENTS`; past it they are refused with `TOO_MANY_PENDING`), as `messageHandler`
 * is called in arrival order. Handlers themselves may still finish in any order.
 */
export class EventRouter<M extends object = AnyRecord>
  implements IEventRouter<TServerEventMap, TServerEventMap, M>
{
  private readonly handlers = new Map<string, TAnyHandler>();
  private middleware: TEventMiddleware<M, AnyRecord>[] = [];
  /** Connections whose events wait behind an async middleware, with the waiting events. */
  private readonly held = new WeakMap<IWebSocketClient<M>, IEventContext<unknown, M>[]>();
  private active = false;

  constructor(private readonly opts: IEventDispatchOptions<M>) {}

  on(event: string, handler: TAnyHandler): () => void {
    if (typeof event !== 'string' || event.length === 0 || WebSocketEvents.isReserved(event)) {
      throw new TypeError(`[WebSocketServerHelper] on(): "${String(event)}" is not an app event name`);
    }
    if (typeof handler !== 'function')
      throw new TypeError('[WebSocketServerHelper] on(): handler must be a function');
    if (this.handlers.has(event)) {
      throw new Error(`[WebSocketServerHelper] on(): "${event}" already has a handler`);
    }
    this.handlers.set(event, handler);
    this.activate();
    return () => {
      if (this.handlers.get(event) === handler) this.handlers.delete(event);
    };
  }

  use(middleware: TEventMiddleware<M, AnyRecord>): () => void {
    if (typeof middleware !== 'function') {
      throw new TypeError('[WebSocketServerHelper] use(): middleware must be a function');
    }
    // A new array: a dispatch already walking the old one is not disturbed.
    this.middleware = [...this.middleware, middleware];
    this.activate();
    return () => {
      this.middleware = this.middleware.filter((m) => m !== middleware);
    };
  }

  /** One app event of an authenticated client (reserved events never come here). */
  dispatch(client: IWebSocketClient<M>, message: IWebSocketMessage): void {
    const { id } = message;
    if (id !== undefined && !this.opts.requests.admit(client, id)) return;
    const context: IEventContext<unknown, M> = {
      event: message.event,
      data: message.data,
      id,
      clientId: client.id,
      userId: client.userId,
      metadata: client.metadata,
      client,
      state: {},
    };
    const waiting = this.held.get(client);
    if (waiting) {
      if (waiting.length >= MAX_HELD_EVENTS) {
        const text = `At most ${MAX_HELD_EVENTS} events may wait behind a middleware`;
        replyError(this.opts.reply, client, WebSocketErrorCodes.TOO_MANY_PENDING, text, id);
        return;
      }
      this.hold(context);
      waiting.push(context);
      return;
    }
    const pending = this.run(context, 0);
    if (pending) {
      this.held.set(client, []);
      this.wait(client, context, pending);
    }
  }

  private activate(): void {
    if (this.active) return;
    this.active = true;
    this.opts.activate();
  }

  /** A held request counts against `maxPendingRequests` until it is handled or refused. */
  private hold(context: IEventContext<unknown, M>): void {
    if (context.id !== undefined) context.client.pendingRequests = (context.client.pendingRequests ?? 0) + 1;
  }

  private release(context: IEventContext<unknown, M>): void {
    if (context.id !== undefined) context.client.pendingRequests = (context.client.pendingRequests ?? 1) - 1;
  }

  /** `context` went async: the connection's next events wait until it settles. */
  private wait(
    client: IWebSocketClient<M>,
    context: IEventContext<unknown, M>,
    pending: Promise<void>,
  ): void {
    this.hold(context);
    void pending.then(() => {
      this.release(context);
      this.resume(client);
    });
  }

  /** The middleware in progress finished: runs the waiting events in order, until one is held again. */
  private resume(client: IWebSocketClient<M>): void {
    const waiting = this.held.get(client);
    if (!waiting) return;
    while (waiting.length > 0) {
      const context = waiting.shift()!;
      this.release(context);
      if (!this.opts.isConnected(client)) continue;
      const pending = this.run(context, 0);
      if (pending) {
        this.wait(client, context, pending);
        return;
      }
    }
    this.held.delete(client);
  }

  /**
   * Runs the middleware from `index`, then the handler. Stays synchronous while every middleware
   * is; returns a promise (that never rejects) as soon as one is not.
   */
  private run(context: IEventContext<unknown, M>, index: number): Promise<void> | undefined {
    const chain = this.middleware;
    for (let i = index; i < chain.length; i++) {
      let result: unknown;
      try {
        result = chain[i]!(context);
      } catch (error) {
        this.opts.requests.refuse(context.client, context.id, error, `middleware for "${context.event}"`);
        return undefined;
      }
      if (isThenable(result)) {
        return Promise.resolve(result)
          .then(
            () => {
              if (!this.opts.isConnected(context.client)) return undefined;
              return this.run(context, i + 1);
            },
            (error: unknown) => {
              if (this.opts.isConnected(context.client)) {
                this.opts.requests.refuse(
                  context.client,
                  context.id,
                  error,
                  `middleware for "${context.event}"`,
                );
              }
            },
          )
          .then(undefined, (error: unknown) => this.opts.logger.error('event dispatch failed', error));
      }
    }
    this.deliver(context);
    return undefined;
  }

  private deliver(context: IEventContext<unknown, M>): void {
    const { client, id, event } = context;
    const { requests } = this.opts;
    const handler = this.handlers.get(event);
    if (handler) {
      if (id !== undefined) requests.respond(client, id, handler, context, event);
      else fireAndLog(this.opts.logger, 'on() handler', handler, context);
      return;
    }
    const message: IWebSocketMessage = { event };
    if (context.data !== undefined) message.data = context.data;
    if (id === undefined) {
      requests.notify(client, message);
      return;
    }
    message.id = id;
    requests.fallThrough(client, message, id);
  }
}
