import {
  WebSocketClientStates,
  WebSocketErrorCodes,
  WebSocketEvents,
  WebSocketLimits,
} from '../common/constants.ts';
import { logFields } from '../common/log.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocketClient,
  IWebSocketMessage,
  TWebSocketMessageHandler,
} from '../common/types.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import { isPlainObject, jsonDepthExceeds, parseJsonSafely } from '../utils/json.ts';
import { fireAndLog } from '../utils/safe-call.ts';
import type { AppRequests } from './app-requests.ts';
import type { EventRouter } from './event-router.ts';
import type { HistoryRequests } from './history-requests.ts';
import { Admission, frameBytes, type InboundLimiter, peekRequestId } from './inbound-limits.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';
import type { RoomRequests } from './room-requests.ts';
import type { SessionManager } from './session-manager.ts';
import type { TSystemRequest } from './system-requests.ts';

export interface IInboundRouterOptions<A extends object, M extends object> {
  sessions: SessionManager<A, M>;
  rooms: RoomRequests<M>;
  history: HistoryRequests<M>;
  /** Application frames with an `id`: answered with what `messageHandler` returns. */
  requests: AppRequests<M>;
  /** System requests added by other features (presence, acknowledgements), by event name. */
  systemRequests?: ReadonlyMap<string, TSystemRequest<M>>;
  logger: ILogger;
  messageHandler?: TWebSocketMessageHandler;
  reply: TSystemReply<M>;
  limiter: InboundLimiter;
  counters: ServerCounters;
  /** Measure inbound bytes even when no byte limit needs them (metrics on). */
  countBytes: boolean;
}

/**
 * Turns one raw frame into an action. Every malformed frame is answered with an
 * `error` event and the connection stays usable; nothing here throws.
 */
export class InboundRouter<A extends object = AnyRecord, M extends object = AnyRecord> {
  /** Connections with a `ws:refresh` in progress. */
  private readonly refreshing = new WeakSet<IWebSocketClient<M>>();
  /** Set once `on()` or `use()` registered something: app events go through it from then on. */
  events?: EventRouter<M>;

  constructor(private readonly opts: IInboundRouterOptions<A, M>) {}

  route(client: IWebSocketClient<M>, raw: unknown): void {
    const now = Date.now();
    client.lastActivity = now;
    const { limiter, counters } = this.opts;
    counters.inboundFrames++;
    if (limiter.rateLimited || this.opts.countBytes) {
      const bytes = frameBytes(raw);
      counters.inboundBytes += bytes;
      const admission = limiter.rateLimited ? limiter.admit(client, bytes, now) : Admission.ACCEPT;
      if (admission !== Admission.ACCEPT) {
        // A request whose id can be read cheaply is always answered, so its sender can settle it.
        const id = peekRequestId(raw);
        limiter.enforce(
          client,
          id !== undefined && admission === Admission.REFUSE ? Admission.REFUSE_AND_TELL : admission,
          WebSocketErrorCodes.RATE_LIMITED,
          'Rate limit exceeded; frame dropped',
          id,
        );
        return;
      }
    }
    const message = this.decode(client, raw);
    if (!message) return;
    const { event } = message;

    if (event === WebSocketEvents.HEARTBEAT) return;
    if (event === WebSocketEvents.AUTHENTICATE) {
      this.settleInBackground(
        this.opts.sessions.authenticate(client, message.data, message.id),
        'authenticate',
      );
      return;
    }
    if (client.state !== WebSocketClientStates.AUTHENTICATED) {
      const text = 'Not authenticated: only authenticate and heartbeat are accepted';
      const code = WebSocketErrorCodes.NOT_AUTHENTICATED;
      if (!limiter.unauthenticated(client, code, text, message.id))
        this.error(client, code, text, message.id);
      return;
    }
    switch (event) {
      case WebSocketEvents.JOIN:
        this.settleInBackground(this.opts.rooms.join(client, message.data, message.id), 'join');
        return;
      case WebSocketEvents.LEAVE:
        this.settleInBackground(this.opts.rooms.leave(client, message.data, message.id), 'leave');
        return;
      case WebSocketEvents.REFRESH:
        this.refresh(client, message);
        return;
      case WebSocketEvents.HISTORY:
        this.settleInBackground(this.opts.history.handle(client, message.data, message.id), 'ws:history');
        return;
    }
    const system = this.opts.systemRequests?.get(event);
    if (system) {
      system(client, message.data, message.id);
      return;
    }
    if (WebSocketEvents.isReserved(event)) {
      this.error(
        client,
        WebSocketErrorCodes.RESERVED_EVENT,
        `"${event}" is a reserved system event`,
        message.id,
      );
      return;
    }
    if (this.events !== undefined) {
      this.events.dispatch(client, message);
      return;
    }
    if (message.id !== undefined) {
      this.opts.requests.handle(client, message, message.id);
      return;
    }
    fireAndLog(this.opts.logger, 'messageHandler', this.opts.messageHandler, {
      clientId: client.id,
      userId: client.userId,
      message,
    });
  }

  /**
   * `ws:refresh`: one at a time per connection (with or without an expiry), and it counts
   * against `maxPendingRequests` while `authenticateFn` runs. Either refusal is `TOO_MANY_PENDING`
   * and counts towards `closeAfterRefusals`.
   */
  private refresh(client: IWebSocketClient<M>, message: IWebSocketMessage): void {
    const { limiter } = this.opts;
    if (this.refreshing.has(client)) {
      const text = 'A refresh is already in progress';
      limiter.refuseRequest(client, WebSocketErrorCodes.TOO_MANY_PENDING, text, message.id);
      return;
    }
    if (!limiter.mayStartRequest(client, message.id)) return;
    this.refreshing.add(client);
    client.pendingRequests = (client.pendingRequests ?? 0) + 1;
    const done = this.opts.sessions.refresh.refresh(client, message.data, message.id).finally(() => {
      this.refreshing.delete(client);
      client.pendingRequests = (client.pendingRequests ?? 1) - 1;
    });
    this.settleInBackground(done, 'refresh');
  }

  private decode(client: IWebSocketClient<M>, raw: unknown): IWebSocketMessage | undefined {
    if (typeof raw !== 'string') {
      this.error(
        client,
        WebSocketErrorCodes.INVALID_FRAME,
        'Binary frames are not supported; send JSON text',
      );
      return undefined;
    }
    // A value nested deeper than any message needs would overflow the stack of whatever walks it
    // later (the dangerous-key reviver, JSON.stringify, the application): refused before parsing.
    if (jsonDepthExceeds(raw, WebSocketLimits.MAX_FRAME_DEPTH)) {
      this.error(client, WebSocketErrorCodes.INVALID_FRAME, 'Message nested too deeply');
      return undefined;
    }
    let parsed: unknown;
    try {
      parsed = parseJsonSafely(raw);
    } catch {
      this.error(client, WebSocketErrorCodes.INVALID_FRAME, 'Invalid JSON');
      return undefined;
    }
    if (!isPlainObject(parsed)) {
      this.error(client, WebSocketErrorCodes.INVALID_FRAME, 'A message must be a JSON object');
      return undefined;
    }
    const id = typeof parsed.id === 'string' ? parsed.id : undefined;
    if (typeof parsed.event !== 'string' || parsed.event.length === 0) {
      this.error(
        client,
        WebSocketErrorCodes.INVALID_FRAME,
        'A message must have a non-empty string "event"',
        id,
      );
      return undefined;
    }
    const message: IWebSocketMessage = { event: parsed.event };
    if (parsed.data !== undefined) message.data = parsed.data;
    if (id !== undefined) message.id = id;
    return message;
  }

  private error(client: IWebSocketClient<M>, code: string, message: string, id?: string): void {
    replyError(this.opts.reply, client, code, message, id);
  }

  private settleInBackground(work: Promise<void> | undefined, label: string): void {
    work?.catch((error: unknown) => this.opts.logger.error(`${label} handling failed`, logFields({ error })));
  }
}
