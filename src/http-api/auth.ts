import { createHash, timingSafeEqual } from 'node:crypto';

/** Shortest key the API accepts: shorter ones never match (and a static list with one throws). */
export const MIN_API_KEY_LENGTH = 16;
/** Longest `Authorization` value looked at: anything longer is refused before hashing. */
const MAX_AUTHORIZATION_LENGTH = 1_024;

/**
 * The API keys: a list, or a function read on every request (return a new list to rotate
 * without a restart: the old and the new key side by side, then the new one alone).
 */
export type THttpApiKeys = readonly string[] | (() => readonly string[]);

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Checks `Authorization: Bearer <key>` against every key in constant time (each key's SHA-256
 * compared with `timingSafeEqual`, all of them every time: neither the position of the match
 * nor a key's length shows in the timing). Answers the matched key's digest (a stable id for
 * the rate bucket, never the key) or undefined.
 */
export class ApiKeyCheck {
  constructor(private readonly keys: THttpApiKeys) {
    if (typeof keys !== 'function') {
      if (!Array.isArray(keys) || keys.length === 0 || !keys.every(isUsableKey)) {
        throw new Error(
          `[HttpApi] keys must be a non-empty list of strings of at least ${MIN_API_KEY_LENGTH} characters, or a function returning one`,
        );
      }
    }
  }

  check(authorization: string | null | undefined): string | undefined {
    if (!authorization || authorization.length > MAX_AUTHORIZATION_LENGTH) return undefined;
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!match) return undefined;
    const given = digest(match[1]!);
    let keys: readonly string[];
    try {
      keys = typeof this.keys === 'function' ? this.keys() : this.keys;
    } catch {
      return undefined;
    }
    if (!Array.isArray(keys)) return undefined;
    let matched: Buffer | undefined;
    for (const key of keys) {
      if (!isUsableKey(key)) continue;
      const expected = digest(key);
      if (timingSafeEqual(given, expected) && matched === undefined) matched = expected;
    }
    return matched?.toString('hex').slice(0, 16);
  }
}

function isUsableKey(key: unknown): key is string {
  return typeof key === 'string' && key.length >= MIN_API_KEY_LENGTH && !/\s/.test(key);
}
