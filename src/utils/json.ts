/** Keys that can reach an object's prototype when user code merges parsed data. */
const DANGEROUS_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function dropDangerousKeys(key: string, value: unknown): unknown {
  return DANGEROUS_KEYS.has(key) ? undefined : value;
}

/**
 * Text that could spell a dangerous key: the names themselves, or a `\u` escape
 * (JSON allows `"\u005f_proto__"`, which parses to `__proto__`).
 */
const MAYBE_DANGEROUS = /__proto__|constructor|prototype|\\u/;

/**
 * JSON.parse that removes `__proto__`, `constructor` and `prototype` keys at any
 * depth. The reviver (slow) only runs when the text could contain such a key,
 * so ordinary frames pay for one scan.
 */
export function parseJsonSafely(text: string): unknown {
  return MAYBE_DANGEROUS.test(text) ? JSON.parse(text, dropDangerousKeys) : JSON.parse(text);
}

/** True when `text` might contain a key `parseJsonSafely` removes (so it cannot be forwarded as is). */
export function mayHideDangerousKeys(text: string): boolean {
  return MAYBE_DANGEROUS.test(text);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `parseJsonSafely` for messages that must be a JSON object: undefined for anything else, never a throw. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(text);
  } catch {
    return undefined;
  }
  return isPlainObject(parsed) ? parsed : undefined;
}

/** `JSON.stringify(data)`, or undefined when there is no data to send. */
export function serializeData(data: unknown): string | undefined {
  return data === undefined ? undefined : JSON.stringify(data);
}

/**
 * Builds the `{ event, data, id? }` frame around data that is already JSON, so
 * the same serialized payload can also go into the Redis envelope. `id` echoes
 * the request a reply answers.
 */
export function frameFromJson(event: string, dataJson: string | undefined, id?: string): string {
  const head = `{"event":${JSON.stringify(event)}`;
  // The fan-out path (no id) builds its string in one step.
  if (id === undefined) return dataJson === undefined ? `${head}}` : `${head},"data":${dataJson}}`;
  const tail = `,"id":${JSON.stringify(id)}}`;
  return dataJson === undefined ? head + tail : `${head},"data":${dataJson}${tail}`;
}

/**
 * Serializes an `{ event, data }` frame. `data` that cannot be serialized
 * (a BigInt, a cycle) throws here, at the caller, before anything is sent.
 */
export function encodeFrame(event: string, data: unknown, id?: string): string {
  return frameFromJson(event, serializeData(data), id);
}

/**
 * True when `text` nests arrays/objects deeper than `max` levels (brackets inside strings do not
 * count). JSON.parse itself copes with any depth, but what later walks the value recursively
 * (JSON.stringify, a reviver, user code) overflows the stack on a deep one: text from outside the
 * process is checked with this before it is parsed. Text no longer than `2 * max` characters, or
 * with at most `max` opening brackets, cannot be that deep and is not scanned; any other costs one
 * pass over its characters.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  const length = text.length;
  if (length <= max * 2) return false;
  // Text with at most `max` opening brackets in all (strings included) cannot nest deeper: counted
  // with indexOf, which is several times faster than the character loop below.
  let opening = 0;
  for (let at = text.indexOf('{'); at >= 0 && opening <= max; at = text.indexOf('{', at + 1)) opening++;
  for (let at = text.indexOf('['); at >= 0 && opening <= max; at = text.indexOf('[', at + 1)) opening++;
  if (opening <= max) return false;
  let depth = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
      if (i < 0) return false; // unterminated string: the parse rejects it
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote closing the string that opens at `open` (-1 when there is none). */
function closingQuote(text: string, open: number): number {
  let at = text.indexOf('"', open + 1);
  while (at > 0) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if ((backslashes & 1) === 0) return at;
    at = text.indexOf('"', at + 1);
  }
  return -1;
}

/** True when `text` is longer than `max` bytes in UTF-8; only a string that could be is measured. */
export function utf8LengthExceeds(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return Buffer.byteLength(text, 'utf8') > max;
}
