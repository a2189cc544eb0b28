import { WebSocketCloseCodes, WebSocketErrorCodes, WebSocketLimits } from '../common/constants.ts';
import type { IWebSocketClient } from '../common/types.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import { replyError, type TSystemReply } from './local-delivery.ts';

const PREFIX = '[WebSocketServerHelper]';

/** Longest request id accepted; a longer one is refused with INVALID_REQUEST (it is echoed back). */
export const MAX_REQUEST_ID_LENGTH = 128;

/** The server helper's `limits` option. Each field: a positive number, or `false` to turn that limit off; omitted → the default. */
export interface IWebSocketLimitsOptions {
  /** Sustained inbound frames per second. Default 100. */
  messagesPerSecond?: number | false;
  /** Frames allowed at once above the rate. Default 2 × `messagesPerSecond`. */
  messageBurst?: number | false;
  /** Sustained inbound bytes per second (UTF-8 size of text frames). Default 1 MiB. */
  bytesPerSecond?: number | false;
  /** Bytes allowed at once above the rate. Default 2 × `bytesPerSecond`. */
  bytesBurst?: number | false;
  /** Rooms a client may reach through its own `join` requests (its id room not counted). Default 500. */
  maxRoomsPerClient?: number | false;
  /** Requests of one client in progress at once. Default 32. */
  maxPendingRequests?: number | false;
  /** Refused frames before authentication before the connection is closed with 4005. Default 10. */
  maxUnauthenticatedFrames?: number | false;
  /**
   * Refusals by any limit (rate, rooms, pending requests) that close the connection with 4005, counted
   * in a leaky bucket: each refusal adds 1, the level drains by `closeAfterRefusals` per `refusalWindow`,
   * and accepted frames in between do not reset it. Default 100.
   */
  closeAfterRefusals?: number | false;
  /** Milliseconds in which `closeAfterRefusals` refusals drain away (see there). Default 60 000; `false`: never. */
  refusalWindow?: number | false;
}

/** Every limit resolved to a number; `Infinity` means "off". */
export interface IResolvedLimits {
  messagesPerSecond: number;
  messageBurst: number;
  bytesPerSecond: number;
  bytesBurst: number;
  maxRoomsPerClient: number;
  maxPendingRequests: number;
  maxUnauthenticatedFrames: number;
  closeAfterRefusals: number;
  refusalWindow: number;
}

const OFF: IResolvedLimits = {
  messagesPerSecond: Number.POSITIVE_INFINITY,
  messageBurst: Number.POSITIVE_INFINITY,
  bytesPerSecond: Number.POSITIVE_INFINITY,
  bytesBurst: Number.POSITIVE_INFINITY,
  maxRoomsPerClient: Number.POSITIVE_INFINITY,
  maxPendingRequests: Number.POSITIVE_INFINITY,
  maxUnauthenticatedFrames: Number.POSITIVE_INFINITY,
  closeAfterRefusals: Number.POSITIVE_INFINITY,
  refusalWindow: Number.POSITIVE_INFINITY,
};

/** A limit is a positive integer, or `false` / `Infinity` to turn just that one off. */
function limit(name: string, value: number | false | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === false || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${PREFIX} limits.${name} must be a positive number or false, got ${String(value)}`);
  }
  return value;
}

/** Fills in the documented defaults; `limits: false` turns every limit off. */
export function resolveLimits(opts: IWebSocketLimitsOptions | false | undefined): IResolvedLimits {
  if (opts === false) return { ...OFF };
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new Error(`${PREFIX} limits must be an object or false`);
  }
  const o = opts ?? {};
  const messagesPerSecond = limit(
    'messagesPerSecond',
    o.messagesPerSecond,
    WebSocketLimits.MESSAGES_PER_SECOND,
  );
  const bytesPerSecond = limit('bytesPerSecond', o.bytesPerSecond, WebSocketLimits.BYTES_PER_SECOND);
  return {
    messagesPerSecond,
    // A burst defaults to two seconds' worth of the rate.
    messageBurst: limit('messageBurst', o.messageBurst, messagesPerSecond * 2),
    bytesPerSecond,
    bytesBurst: limit('bytesBurst', o.bytesBurst, bytesPerSecond * 2),
    maxRoomsPerClient: limit('maxRoomsPerClient', o.maxRoomsPerClient, WebSocketLimits.MAX_ROOMS_PER_CLIENT),
    maxPendingRequests: limit(
      'maxPendingRequests',
      o.maxPendingRequests,
      WebSocketLimits.MAX_PENDING_REQUESTS,
    ),
    maxUnauthenticatedFrames: limit(
      'maxUnauthenticatedFrames',
      o.maxUnauthenticatedFrames,
      WebSocketLimits.MAX_UNAUTHENTICATED_FRAMES,
    ),
    closeAfterRefusals: limit(
      'closeAfterRefusals',
      o.closeAfterRefusals,
      WebSocketLimits.CLOSE_AFTER_REFUSALS,
    ),
    refusalWindow: limit('refusalWindow', o.refusalWindow, WebSocketLimits.REFUSAL_WINDOW),
  };
}

/**
 * The `limits` object of `connected`: the limits a client must pace its frames and requests by,
 * only those that are on (`{}` when none is, which tells a client that no pacing is needed, unlike
 * a `connected` without the field, from a server older than it).
 */
export function announcedLimits(limits: IResolvedLimits): Record<string, number> {
  const announced: Record<string, number> = {};
  for (const key of [
    'maxPendingRequests',
    'messagesPerSecond',
    'messageBurst',
    'bytesPerSecond',
    'bytesBurst',
  ] as const) {
    if (limits[key] !== Number.POSITIVE_INFINITY) announced[key] = limits[key];
  }
  return announced;
}

const QUOTE = 34;
const BACKSLASH = 92;
const ID_HEAD = '{"id":"';
const ID_KEY = ',"id":';

/**
 * The `id` of a frame refused unparsed (over the rate), read from its text without parsing it:
 * when the text starts with `{"id":"` or ends with `,"id":"…"}` (how `JSON.stringify` writes
 * `{ id, … }` and `{ event, data, id }`, the SDK's requests), with 1 to `MAX_REQUEST_ID_LENGTH`
 * characters and no escape, quote or control character in it. At most that many characters are
 * looked at; anything else (spaces around the colon, an id in the middle) gives undefined.
 */
export function peekRequestId(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const plain = (i: number) => {
    const c = raw.charCodeAt(i);
    return c >= 32 && c !== BACKSLASH;
  };
  if (raw.startsWith(ID_HEAD)) {
    const start = ID_HEAD.length;
    for (let i = start; i < raw.length && i <= start + MAX_REQUEST_ID_LENGTH; i++) {
      if (raw.charCodeAt(i) === QUOTE) return i > start ? raw.slice(start, i) : undefined;
      if (!plain(i)) return undefined;
    }
    return undefined;
  }
  // `…,"id":"<id>"}`: `close` is the quote before the final brace.
  const close = raw.length - 2;
  if (close < 0 || raw.charCodeAt(close + 1) !== 125 || raw.charCodeAt(close) !== QUOTE) return undefined;
  for (let i = close - 1; i >= 0 && i >= close - 1 - MAX_REQUEST_ID_LENGTH; i--) {
    if (raw.charCodeAt(i) === QUOTE) {
      return i < close - 1 && raw.startsWith(ID_KEY, i - ID_KEY.length) ? raw.slice(i + 1, close) : undefined;
    }
    if (!plain(i)) return undefined;
  }
  return undefined;
}

/** What `admit` decided for one inbound frame. */
export const Admission = {
  /** Within the limits: handle it. */
  ACCEPT: 0,
  /** Over a limit: drop it and tell the client (the first refusal since the last accepted frame). */
  REFUSE_AND_TELL: 1,
  /** Over a limit again: drop it silently (one error per episode bounds what a flood makes us send). */
  REFUSE: 2,
  /** Refused too often (see `refused`): close the connection. */
  CLOSE: 3,
} as const;
export type TAdmission = (typeof Admission)[keyof typeof Admission];

/**
 * Per-connection token buckets (frames and bytes per second, each with a burst)
 * and a leaky bucket of refusals. The state lives in a few numbers on the
 * client record, so a connection pays no extra object; with the rate limits off
 * `admit` is a single comparison.
 */
export class InboundLimiter {
  readonly rateLimited: boolean;

  constructor(
    readonly limits: IResolvedLimits,
    // biome-ignore lint/suspicious/noExplicitAny: any client metadata type
    private readonly reply: TSystemReply<any>,
    private readonly close: (client: IWebSocketClient<object>, code: number, reason: string) => void,
    private readonly counters: ServerCounters,
  ) {
    this.rateLimited =
      limits.messagesPerSecond !== Number.POSITIVE_INFINITY ||
      limits.bytesPerSecond !== Number.POSITIVE_INFINITY;
  }

  admit(client: IWebSocketClient<object>, bytes: number, now: number): TAdmission {
    if (!this.rateLimited) return Admission.ACCEPT;
    const { messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst } = this.limits;
    const elapsed = (now - (client.tokensAt ?? now)) / 1000;
    client.tokensAt = now;
    let frames = refill(client.frameTokens, messageBurst, messagesPerSecond, elapsed);
    let budget = refill(client.byteTokens, bytesBurst, bytesPerSecond, elapsed);
    if (frames >= 1 && budget >= bytes) {
      frames -= 1;
      budget -= bytes;
      client.frameTokens = frames;
      client.byteTokens = budget;
      client.refusals = 0;
      return Admission.ACCEPT;
    }
    client.frameTokens = frames;
    client.byteTokens = budget;
    return this.refused(client, now);
  }

  /**
   * Counts a refusal (rate, room or pending limit). The first since the last accepted frame is
   * answered, the next ones are not. Escalation uses a leaky bucket that accepted frames do not
   * empty: each refusal adds 1, the level drains by `closeAfterRefusals` per `refusalWindow`, and
   * once it reaches `closeAfterRefusals` the connection is closed. So `closeAfterRefusals`
   * refusals in a row close it at once, a client refused steadily faster than
   * `closeAfterRefusals / refusalWindow` is closed whatever it interleaves, and one that meets a
   * limit now and then never is.
   */
  refused(client: IWebSocketClient<object>, now = Date.now()): TAdmission {
    const refusals = (client.refusals ?? 0) + 1;
    client.refusals = refusals;
    const { closeAfterRefusals, refusalWindow } = this.limits;
    if (closeAfterRefusals !== Number.POSITIVE_INFINITY) {
      // The bucket drains in whole refusals, one per `refusalWindow / closeAfterRefusals` ms, so
      // its level is a count: `closeAfterRefusals` refusals inside one such step always close.
      const step = refusalWindow / closeAfterRefusals;
      let level = client.refusalLevel ?? 0;
      let since = client.refusalsAt ?? now;
      const drained = level > 0 && Number.isFinite(step) ? Math.floor(Math.max(0, now - since) / step) : 0;
      if (level === 0 || drained >= level) {
        level = 0;
        since = now;
      } else if (drained > 0) {
        level -= drained;
        since += drained * step;
      }
      client.refusalLevel = level + 1;
      client.refusalsAt = since;
      if (level + 1 >= closeAfterRefusals) return Admission.CLOSE;
    }
    return refusals === 1 ? Admission.REFUSE_AND_TELL : Admission.REFUSE;
  }

  /** Acts on a refusal: an `error` with `code`, nothing, or the error and a 4005 close. */
  enforce(
    client: IWebSocketClient<object>,
    admission: TAdmission,
    code: string,
    message: string,
    id?: string,
  ): void {
    this.counters.countRefusal(code);
    if (admission === Admission.REFUSE_AND_TELL) {
      replyError(this.reply, client, code, message, id);
    } else if (admission === Admission.CLOSE) {
      this.tellAndClose(client, code, message, id);
    }
  }

  /**
   * True when the client may start one more request (`maxPendingRequests`); otherwise refuses it
   * with `TOO_MANY_PENDING` (and the request's id) and returns false. The caller counts it in
   * `client.pendingRequests` while it runs.
   */
  mayStartRequest(client: IWebSocketClient<object>, id?: string): boolean {
    if ((client.pendingRequests ?? 0) < this.limits.maxPendingRequests) return true;
    const text = `At most ${this.limits.maxPendingRequests} requests may be in progress at once`;
    this.refuseRequest(client, WebSocketErrorCodes.TOO_MANY_PENDING, text, id);
    return false;
  }

  /** Counts a refused request (room or pending limit) and answers it; every refused request is answered. */
  refuseRequest(client: IWebSocketClient<object>, code: string, message: string, id?: string): void {
    this.counters.countRefusal(code);
    if (this.refused(client) === Admission.CLOSE) this.tellAndClose(client, code, message, id);
    else replyError(this.reply, client, code, message, id);
  }

  /**
   * Counts a frame refused before authentication; returns true when the
   * connection was closed for it (past `maxUnauthenticatedFrames`).
   */
  unauthenticated(client: IWebSocketClient<object>, code: string, message: string, id?: string): boolean {
    const count = (client.unauthenticatedFrames ?? 0) + 1;
    client.unauthenticatedFrames = count;
    if (count < this.limits.maxUnauthenticatedFrames) return false;
    this.counters.countRefusal(code);
    this.tellAndClose(client, code, message, id);
    return true;
  }

  private tellAndClose(client: IWebSocketClient<object>, code: string, message: string, id?: string): void {
    const closeCode = WebSocketCloseCodes.LIMIT_EXCEEDED;
    replyError(this.reply, client, code, message, id, closeCode);
    this.close(client, closeCode, 'Limit exceeded');
  }
}

/**
 * A bucket after `elapsed` seconds. A limit that is off (`Infinity`) stays full: `0 * Infinity`
 * would be NaN and refuse every frame when only the other rate is on.
 */
function refill(tokens: number | undefined, burst: number, rate: number, elapsed: number): number {
  if (rate === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  return Math.min(burst, (tokens ?? burst) + elapsed * rate);
}

/** UTF-8 size of a text frame (what the client actually sent), or the byte length of a binary one. */
export function frameBytes(raw: unknown): number {
  if (typeof raw === 'string') return Buffer.byteLength(raw);
  if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) return raw.byteLength;
  return 0;
}
