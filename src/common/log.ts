import type { ILogger } from './types.ts';

/**
 * Structured fields of a log line. The library fills the ones it knows (`clientId`, `userId`,
 * `room`, `code`, `error`, …); a structured logger gets them as its first argument.
 */
export interface ILogFields {
  clientId?: string;
  userId?: string;
  room?: string;
  /** A close code or an error code. */
  code?: number | string;
  error?: unknown;
  [field: string]: unknown;
}

/** The fields of one log call, passed among its arguments (see `adaptLogger`). */
export class LogFields {
  constructor(readonly fields: ILogFields) {}
}

/** Marks `fields` as the structured fields of a log call: `logger.warn('…', logFields({ clientId }))`. */
export function logFields(fields: ILogFields): LogFields {
  return new LogFields(fields);
}

/** The fields that name a client: its id and (once authenticated) its user. */
export function clientFields(client: { id: string; userId?: string }, extra?: ILogFields): LogFields {
  // No spreads: a debug line per connection and disconnection builds this even when it is not logged.
  const fields: ILogFields = { clientId: client.id };
  if (client.userId) fields.userId = client.userId;
  if (extra) Object.assign(fields, extra);
  return new LogFields(fields);
}

/** What a pino-compatible logger offers: `(fields, message)` per level, and `child(bindings)`. */
export interface IStructuredLogger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  child?(bindings: Record<string, unknown>): IStructuredLogger;
  /** pino's: whether a line at `level` would be written (see `ILogger.isLevelEnabled`). */
  isLevelEnabled?(level: string): boolean;
}

export interface IAdaptLoggerOptions {
  /** `true`: call `(fields, message)`; `false`: call `(message, ...args)`; omitted: `true` when the logger has `child()`. */
  structured?: boolean;
  /** With a structured logger: a child with these bindings carries them on every line. */
  bindings?: Record<string, unknown>;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const adapted = new WeakSet<ILogger>();

/**
 * The library's logger over the application's. Every library call is `(message, ...args)`,
 * where one argument may be `logFields(…)`:
 * - a console-style `ILogger` gets `(message, ...args)` with the fields' `error` in place of the
 *   fields (the message text already names the client; this is what it always got);
 * - a pino-compatible logger gets `({ ...fields, err, detail }, message)`: an `Error` argument
 *   becomes `err` (pino's error serializer), any other argument `detail`.
 */
export function adaptLogger(logger: ILogger, opts: IAdaptLoggerOptions = {}): ILogger {
  if (adapted.has(logger)) return logger;
  const candidate = logger as unknown as IStructuredLogger;
  const structured = opts.structured ?? typeof candidate.child === 'function';
  let result: ILogger;
  if (structured) {
    const target =
      opts.bindings && typeof candidate.child === 'function' ? candidate.child(opts.bindings) : candidate;
    const at =
      (level: (typeof LEVELS)[number]) =>
      (message: string, ...args: unknown[]) =>
        target[level](toFields(args), message);
    result = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    levelCheck(result, target);
  } else {
    const at =
      (level: (typeof LEVELS)[number]) =>
      (message: string, ...args: unknown[]) =>
        logger[level](message, ...consoleArgs(args));
    result = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    levelCheck(result, logger);
  }
  adapted.add(result);
  return result;
}

/** Passes the source logger's `isLevelEnabled` on (bound: pino's reads `this`). */
function levelCheck(result: ILogger, source: Pick<ILogger, 'isLevelEnabled'>): void {
  const check: unknown = source.isLevelEnabled;
  if (typeof check === 'function') result.isLevelEnabled = (level) => Boolean(check.call(source, level));
}

/**
 * Whether `debug` lines reach the logger: false only when it says so (`isLevelEnabled`, which pino,
 * the console default without `ROOMCAST_DEBUG` and `silentLogger` answer); check before building one.
 */
export function debugLogged(logger: ILogger): boolean {
  return logger.isLevelEnabled === undefined || logger.isLevelEnabled('debug');
}

function consoleArgs(args: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const arg of args) {
    if (!(arg instanceof LogFields)) out.push(arg);
    else if (arg.fields.error !== undefined) out.push(arg.fields.error);
  }
  return out;
}

function toFields(args: unknown[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const details: unknown[] = [];
  for (const arg of args) {
    if (arg instanceof LogFields) {
      const { error, ...rest } = arg.fields;
      Object.assign(fields, rest);
      if (error !== undefined) fields.err = error;
    } else if (arg instanceof Error) fields.err = arg;
    else if (arg !== undefined) details.push(arg);
  }
  if (details.length === 1) fields.detail = details[0];
  else if (details.length > 1) fields.detail = details;
  return fields;
}

/**
 * Lets a repeated log line through at most once per `intervalMs` for each key, and counts the ones
 * held back so the next line can say how many there were. Keys must come from a small fixed set
 * (an error kind, a close code): the state is kept per key for the limiter's lifetime.
 */
export class LogRateLimiter {
  private readonly keys = new Map<string, { at: number; held: number }>();

  constructor(
    readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The number of lines held back since the last one when this one may be written; `undefined` when held back. */
  take(key: string): number | undefined {
    const now = this.now();
    const state = this.keys.get(key);
    if (state === undefined) {
      this.keys.set(key, { at: now, held: 0 });
      return 0;
    }
    if (now - state.at < this.intervalMs) {
      state.held++;
      return undefined;
    }
    const held = state.held;
    state.at = now;
    state.held = 0;
    return held;
  }
}

/** The text of an error without its stack: what a repeated Redis error is logged with. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
