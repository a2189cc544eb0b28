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
