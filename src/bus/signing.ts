import { createHmac } from 'node:crypto';

/**
 * Signed bus messages (the `busSecret` option; format in docs/cluster.md, "Signed bus messages").
 *
 * A signed message is `s1:` + base64(HMAC-SHA-256(secret, json)) + `:` + json, where `json` is
 * the message exactly as it would be published unsigned. The MAC is standard base64 with its
 * padding: always 44 characters, so the JSON starts at a fixed index.
 *
 * A history publication is completed by the publish script in Redis, which appends the position
 * (`,"offset":N,"epoch":"E"}`) and cannot hold the secret: its MAC covers the envelope as the
 * publisher wrote it, i.e. the published JSON with that tail replaced by `}`.
 */
export const SIGNATURE_PREFIX = 's1:';
const MAC_LENGTH = 44;
/** Where the JSON of a signed message starts. */
export const SIGNED_BODY_START = SIGNATURE_PREFIX.length + MAC_LENGTH + 1;

/** The position tail the publish script appends (as envelope.ts reads it). */
const POSITION_TAIL = /^,"offset":(0|[1-9]\d{0,15}),"epoch":"[ !#-[\]-~]{1,64}"\}$/;

/** Checks `busSecret` as the options take it: one secret, or several (the first signs). */
export function resolveBusSecrets(prefix: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((secret) => typeof secret === 'string' && secret.length >= 16)) {
    throw new Error(
      `${prefix} busSecret must be a string of at least 16 characters, or a non-empty array of such strings (the first signs)`,
    );
  }
  return [...list] as string[];
}

/** HMAC-SHA-256 of a text under one secret, as base64. */
type TMac = (text: string) => string;

/** Bun's native hasher, keyed once and copied per message (a few times cheaper); node:crypto elsewhere. */
function macFor(secret: string): TMac {
  const bun = (globalThis as { Bun?: { CryptoHasher?: typeof Bun.CryptoHasher } }).Bun;
  if (bun?.CryptoHasher) {
    const keyed = new bun.CryptoHasher('sha256', secret);
    return (text) => keyed.copy().update(text).digest('base64');
  }
  return (text) => createHmac('sha256', secret).update(text, 'utf8').digest('base64');
}

/** Signs with the first secret, accepts a message signed with any of them. */
export class BusSigner {
  private readonly macs: TMac[];

  constructor(secrets: readonly string[]) {
    this.macs = secrets.map(macFor);
  }

  /** `json` with its signature in front. */
  sign(json: string): string {
    return this.prefixFor(json) + json;
  }

  /** The `s1:<mac>:` that goes in front of a message whose signed text is `signedText`. */
  prefixFor(signedText: string): string {
    return `${SIGNATURE_PREFIX}${this.macs[0]!(signedText)}:`;
  }

  /**
   * True when `raw` is a signed message whose MAC matches under one of the secrets. The JSON is
   * `raw.slice(SIGNED_BODY_START)`.
   */
  verify(raw: string): boolean {
    if (!raw.startsWith(SIGNATURE_PREFIX) || raw.charCodeAt(SIGNED_BODY_START - 1) !== 0x3a) return false;
    const given = raw.slice(SIGNATURE_PREFIX.length, SIGNED_BODY_START - 1);
    const json = raw.slice(SIGNED_BODY_START);
    // A history publication: the MAC covers it without the position the script appended.
    const tailAt = json.endsWith('"}') ? json.lastIndexOf(',"offset":') : -1;
    const tail = tailAt > 0 && POSITION_TAIL.test(json.slice(tailAt));
    const signed = tail ? `${json.slice(0, tailAt)}}` : json;
    for (const mac of this.macs) {
      if (sameText(mac(signed), given)) return true;
    }
    // A message that merely ends like a position (never written so by our publishers): whole text.
    if (tail) for (const mac of this.macs) if (sameText(mac(json), given)) return true;
    return false;
  }
}

/** Compares without stopping at the first difference (the time does not tell how much matched). */
function sameText(expected: string, given: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ given.charCodeAt(i);
  return diff === 0;
}
