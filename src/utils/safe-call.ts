import { logFields } from '../common/log.ts';
import type { ILogger } from '../common/types.ts';

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * Calls a user callback whose result we do not need. Whatever it throws or
 * rejects is logged and swallowed, so user code can never crash the process
 * or leave an unhandled rejection behind.
 */
export function fireAndLog<A>(
  logger: ILogger,
  label: string,
  fn: ((arg: A) => unknown) | undefined,
  arg: A,
): void {
  if (!fn) return;
  try {
    const result = fn(arg);
    if (isThenable(result)) {
      result.then(undefined, (error: unknown) => logger.error(`${label} rejected`, logFields({ error })));
    }
  } catch (error) {
    logger.error(`${label} threw`, logFields({ error }));
  }
}

/** The outcome of a user callback whose result we need. */
export type TCallbackOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Awaits a user callback and turns a throw or a rejection into a value. */
export async function settle<A, R>(fn: (arg: A) => R | PromiseLike<R>, arg: A): Promise<TCallbackOutcome<R>> {
  return settleSoon(fn, arg);
}

/**
 * Calls a user callback and turns a throw or a rejection into a value, staying
 * synchronous when it returns a plain value: most `authenticateFn`s answer at
 * once, and a connection should not pay for promises it does not need.
 */
export function settleSoon<A, R>(
  fn: (arg: A) => R | PromiseLike<R>,
  arg: A,
): TCallbackOutcome<R> | Promise<TCallbackOutcome<R>> {
  let result: R | PromiseLike<R>;
  try {
    result = fn(arg);
  } catch (error) {
    return { ok: false, error };
  }
  if (!isThenable(result)) return { ok: true, value: result };
  return Promise.resolve(result).then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}
