import { WebSocketLimits } from '../common/constants.ts';
import type { ILogger } from '../common/types.ts';
import { jsonDepthExceeds, utf8LengthExceeds } from '../utils/json.ts';
import { type BusSigner, SIGNED_BODY_START } from './signing.ts';

/** Why a message from Redis was dropped (each has its own counter in the bus stats). */
export type TBusDropKind = 'malformed' | 'oversize' | 'unauthenticated' | 'deliverRefused';

export type TBusDropCounters = Record<TBusDropKind, number>;

/** Most bytes the history publish script adds to an envelope: `,"offset":<16 digits>,"epoch":"<64>"`. */
export const POSITION_TAIL_RESERVE = 101;

/** After the first drop is logged, the next ones are summed up in one line per this many ms. */
export const DROP_LOG_INTERVAL = 10_000;

export interface IBusGuardOptions {
  logger: ILogger;
  /** The counters drops are added to (the bus stats). */
  stats: TBusDropCounters;
  /** Largest message, in UTF-8 bytes of its JSON (a signature in front not counted). */
  maxEnvelopeBytes: number;
  /** `busSecret` on: only messages signed with one of its secrets get through. */
  signer?: BusSigner;
}

/**
 * The door every message from Redis passes before it is parsed: size, signature (with
 * `busSecret`) and nesting depth. What fails is counted and logged at a bounded rate (the first
 * drop at once, then one summary line per `DROP_LOG_INTERVAL`), never thrown.
 */
export class BusGuard {
  readonly maxEnvelopeBytes: number;
  readonly signer?: BusSigner;
  private lastLog = Number.NEGATIVE_INFINITY;
  private held = 0;
  private heldKinds: Partial<TBusDropCounters> = {};
  private lastDetail = '';
  private timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly opts: IBusGuardOptions) {
    this.maxEnvelopeBytes = opts.maxEnvelopeBytes;
    this.signer = opts.signer;
  }

  /** Where the JSON of `raw` starts: after the signature when messages are signed. */
  get bodyStart(): number {
    return this.signer ? SIGNED_BODY_START : 0;
  }

  /** The JSON of a message from Redis when it may be parsed; undefined when it was dropped. */
  open(raw: string, what: string): string | undefined {
    const signer = this.signer;
    if (utf8LengthExceeds(raw, this.maxEnvelopeBytes + (signer ? SIGNED_BODY_START : 0))) {
      this.drop('oversize', `${what} larger than maxEnvelopeBytes (${this.maxEnvelopeBytes})`);
      return undefined;
    }
    let json = raw;
    if (signer) {
      if (!signer.verify(raw)) {
        this.drop('unauthenticated', `${what} without a valid busSecret signature`);
        return undefined;
      }
      json = raw.slice(SIGNED_BODY_START);
    }
    if (jsonDepthExceeds(json, WebSocketLimits.MAX_BUS_JSON_DEPTH)) {
      this.drop('malformed', `${what} nested deeper than ${WebSocketLimits.MAX_BUS_JSON_DEPTH} levels`);
      return undefined;
    }
    return json;
  }

  /** `json` as it is published: signed when `busSecret` is on. */
  seal(json: string): string {
    return this.signer ? this.signer.sign(json) : json;
  }

  /**
   * True (and counted, logged) when an outgoing message is over `maxEnvelopeBytes`; `reserve`:
   * bytes Redis will still add (a history publication's position).
   */
  tooLarge(json: string, what: string, reserve = 0): boolean {
    if (!utf8LengthExceeds(json, this.maxEnvelopeBytes - reserve)) return false;
    this.drop('oversize', `${what} not published: larger than maxEnvelopeBytes (${this.maxEnvelopeBytes})`);
    return true;
  }

  drop(kind: TBusDropKind, detail: string): void {
    this.opts.stats[kind]++;
    const now = Date.now();
    if (this.timer === undefined && now - this.lastLog >= DROP_LOG_INTERVAL) {
      this.lastLog = now;
      this.opts.logger.warn(
        `Dropped ${kind} Redis message (${detail}); further drops are summed up every ${DROP_LOG_INTERVAL / 1000}s`,
      );
      return;
    }
    this.held++;
    this.heldKinds[kind] = (this.heldKinds[kind] ?? 0) + 1;
    this.lastDetail = detail;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.summarize(), Math.max(0, this.lastLog + DROP_LOG_INTERVAL - now));
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Logs what is held now (used by the timer, and by `stop()` so nothing counted goes unsaid). */
  private summarize(): void {
    this.timer = undefined;
    if (this.held === 0) return;
    const kinds = Object.entries(this.heldKinds)
      .map(([kind, count]) => `${kind}: ${count}`)
      .join(', ');
    this.opts.logger.warn(
      `Dropped ${this.held} more Redis bus messages since the last report (${kinds}); last: ${this.lastDetail}`,
    );
    this.lastLog = Date.now();
    this.held = 0;
    this.heldKinds = {};
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.summarize();
  }
}

/** `maxEnvelopeBytes`: an integer of at least 1 KiB (a bus message's head alone takes a few hundred bytes). */
export function resolveMaxEnvelopeBytes(prefix: string, value: unknown): number {
  if (value === undefined) return WebSocketLimits.MAX_ENVELOPE_BYTES;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1024) {
    throw new Error(`${prefix} maxEnvelopeBytes must be an integer of at least 1024, got ${String(value)}`);
  }
  return value;
}

/** `maxPublishQueueBytes`: a positive integer (one publication is always let through an empty queue). */
export function resolveMaxPublishQueueBytes(prefix: string, value: unknown): number {
  if (value === undefined) return WebSocketLimits.MAX_PUBLISH_QUEUE_BYTES;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${prefix} maxPublishQueueBytes must be a positive integer, got ${String(value)}`);
  }
  return value;
}
