import {
  WebSocketClientStates,
  WebSocketCloseCodes,
  WebSocketErrorCodes,
  WebSocketEvents,
} from '../common/constants.ts';
import { clientFields } from '../common/log.ts';
import type { AnyRecord, ILogger, IWebSocketClient, TWebSocketAuthenticateFn } from '../common/types.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import { isPlainObject } from '../utils/json.ts';
import { settle } from '../utils/safe-call.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';

export interface ITokenRefreshOptions<A extends object, M extends object> {
  logger: ILogger;
  authenticateFn: TWebSocketAuthenticateFn<A, M>;
  reply: TSystemReply<M>;
  close: (client: IWebSocketClient<M>, code: number, reason: string) => void;
  /** How long before expiry the client is asked to refresh (at most half the remaining lifetime). */
  lead: number;
  /** True while the client is still the live connection for its id. */
  isCurrent: (client: IWebSocketClient<M>) => boolean;
  counters?: ServerCounters;
}

/**
 * Reads the `expiresAt` an `authenticateFn` may return: a `Date` or epoch
 * milliseconds. Undefined when absent; throws (the caller refuses the
 * credentials) when it is malformed or already past, so a broken expiry never
 * silently means "valid for ever".
 */
export function readExpiry(value: unknown, now: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const at = value instanceof Date ? value.getTime() : value;
  if (typeof at !== 'number' || !Number.isFinite(at)) {
    throw new Error(`expiresAt must be a Date or epoch milliseconds, got ${String(value)}`);
  }
  if (at <= now) throw new Error('the credentials have already expired');
  return at;
}

interface ITracked {
  expiresAt: number;
  timer: ReturnType<typeof setTimeout>;
  refreshing: boolean;
}

/**
 * Credentials with an expiry. Before `expiresAt` the client is asked in-band
 * (`ws:refresh`) for new credentials, which go through `authenticateFn` again;
 * a good answer moves the expiry and keeps the connection, its rooms and state.
 * No answer by `expiresAt`, or credentials that fail or belong to another user,
 * close the connection with 4006. Clients without an expiry cost nothing here.
 */
export class TokenRefresh<A extends object = AnyRecord, M extends object = AnyRecord> {
  private readonly tracked = new Map<IWebSocketClient<M>, ITracked>();

  constructor(private readonly opts: ITokenRefreshOptions<A, M>) {}

  /** Clients with a pending expiry (zero once they all left). */
  get size(): number {
    return this.tracked.size;
  }

  /** Starts (or replaces) the clock of a client whose credentials expire at `expiresAt`. */
  track(client: IWebSocketClient<M>, expiresAt: number | undefined): void {
    this.forget(client);
    if (expiresAt === undefined) return;
    const now = Date.now();
    const lead = Math.min(this.opts.lead, (expiresAt - now) / 2);
    const entry: ITracked = {
      expiresAt,
      refreshing: false,
      timer: setTimeout(() => this.ask(client, entry), Math.max(0, expiresAt - lead - now)),
    };
    entry.timer.unref?.();
    this.tracked.set(client, entry);
  }

  forget(client: IWebSocketClient<M>): void {
    const entry = this.tracked.get(client);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.tracked.delete(client);
  }

  clear(): void {
    for (const entry of this.tracked.values()) clearTimeout(entry.timer);
    this.tracked.clear();
  }

  /**
   * A client's `ws:refresh` with new credentials: asked for, or on its own
   * initiative (then also fine for a client without an expiry).
   */
  async refresh(client: IWebSocketClient<M>, data: unknown, id?: string): Promise<void> {
    const { reply, logger } = this.opts;
    if (!isPlainObject(data)) {
      const text = 'ws:refresh expects the new credentials as an object';
      replyError(reply, client, WebSocketErrorCodes.INVALID_REQUEST, text, id);
      return;
    }
    const entry = this.tracked.get(client);
    if (entry?.refreshing) {
      replyError(reply, client, WebSocketErrorCodes.TOO_MANY_PENDING, 'A refresh is already in progress', id);
      return;
    }
    if (entry) entry.refreshing = true;
    const outcome = await settle(
      (credentials: A) => this.opts.authenticateFn(credentials, undefined),
      data as A,
    );
    if (entry) entry.refreshing = false;
    if (!this.opts.isCurrent(client) || client.state !== WebSocketClientStates.AUTHENTICATED) return;

    let expiresAt: number | undefined;
    let failure: string | undefined;
    if (!outcome.ok) {
      logger.error(
        `authenticateFn threw while refreshing client ${client.id}`,
        clientFields(client, { error: outcome.error }),
      );
      failure = 'Refresh failed';
    } else if (!outcome.value || !isPlainObject(outcome.value)) {
      failure = 'Refresh failed';
    } else {
      const { userId, metadata } = outcome.value;
      const user = userId === undefined || userId === null ? undefined : String(userId);
      if (user !== client.userId) {
        failure = 'Refresh credentials belong to another user';
      } else {
        try {
          expiresAt = readExpiry(outcome.value.expiresAt, Date.now());
        } catch (error) {
          failure = `Refresh failed: ${(error as Error).message}`;
        }
        if (!failure && metadata !== undefined) client.metadata = metadata;
      }
    }
    if (failure) {
      if (this.opts.counters) this.opts.counters.refreshFailed++;
      this.expire(client, failure, WebSocketErrorCodes.AUTH_FAILED, id);
      return;
    }
    if (this.opts.counters) this.opts.counters.refreshAccepted++;
    // Credentials that do not live longer than the current ones change nothing: the
    // clock keeps running (no second request), so a client stuck with the same token ends at expiry.
    const current = this.tracked.get(client);
    if (!(current && expiresAt !== undefined && expiresAt <= current.expiresAt))
      this.track(client, expiresAt);
    reply(client, WebSocketEvents.REFRESH, expiresAt === undefined ? {} : { expiresAt }, id);
  }

  /** Time to ask: send `ws:refresh`, then give the client until `expiresAt`. */
  private ask(client: IWebSocketClient<M>, entry: ITracked): void {
    if (this.tracked.get(client) !== entry) return;
    if (!this.opts.isCurrent(client)) {
      this.tracked.delete(client);
      return;
    }
    if (this.opts.counters) this.opts.counters.refreshRequested++;
    this.opts.reply(client, WebSocketEvents.REFRESH, { expiresAt: entry.expiresAt });
    entry.timer = setTimeout(
      () => {
        if (this.tracked.get(client) !== entry) return;
        this.tracked.delete(client);
        if (this.opts.isCurrent(client)) {
          if (this.opts.counters) this.opts.counters.refreshExpired++;
          this.expire(client, 'Credentials expired', WebSocketErrorCodes.TOKEN_EXPIRED);
        }
      },
      Math.max(0, entry.expiresAt - Date.now()),
    );
    entry.timer.unref?.();
  }

  private expire(client: IWebSocketClient<M>, message: string, code: string, id?: string): void {
    this.forget(client);
    const closeCode = WebSocketCloseCodes.TOKEN_EXPIRED;
    this.opts.logger.info(
      `${message}: closing client ${client.id}`,
      clientFields(client, { code: closeCode }),
    );
    replyError(this.opts.reply, client, code, message, id, closeCode);
    this.opts.close(client, closeCode, message);
  }
}
