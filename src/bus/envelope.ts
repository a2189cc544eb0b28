import { type TWebSocketMessageType, WebSocketChannels, WebSocketMessageTypes } from '../common/constants.ts';
import { isBusRoomTarget } from '../common/room-names.ts';
import type { IRedisSocketMessage } from '../common/types.ts';
import { isPlainObject, mayHideDangerousKeys, parseJsonSafely } from '../utils/json.ts';

/** Longest history epoch accepted on the bus (a publication's position) or from a client (`since`). */
export const MAX_EPOCH_LENGTH = 64;

/** The Redis channel an envelope is published on. */
export function channelFor(type: TWebSocketMessageType, target: string | undefined): string {
  switch (type) {
    case WebSocketMessageTypes.CLIENT:
      return WebSocketChannels.forClient({ clientId: target ?? '' });
    case WebSocketMessageTypes.USER:
      return WebSocketChannels.forUser({ userId: target ?? '' });
    case WebSocketMessageTypes.ROOM:
      return WebSocketChannels.forRoom({ room: target ?? '' });
    default:
      return WebSocketChannels.BROADCAST;
  }
}

/**
 * Serializes an envelope. Pass `dataJson` when the payload was already
 * serialized for local delivery, so it is not serialized a second time.
 */
export function encodeEnvelope(message: IRedisSocketMessage, dataJson?: string): string {
  if (dataJson === undefined) return JSON.stringify(message);
  const { data: _data, ...head } = message;
  const headJson = JSON.stringify(head);
  return `${headJson.slice(0, -1)},"data":${dataJson}}`;
}

/** A decoded envelope; `dataJson` is its `data` exactly as received, when it can be the frame body. */
export type TDecodedEnvelope =
  | { ok: true; message: IRedisSocketMessage; dataJson?: string }
  | { ok: false; reason: string };

const DATA_KEY = ',"data":';
/** The position the publish script appends after the data (history/redis-scripts.ts). */
// Only text the whole parse would accept too: a JSON integer, an epoch of printable ASCII without
// escapes (any other epoch goes through the whole parse).
const POSITION_TAIL = /^,"offset":(0|[1-9]\d{0,15}),"epoch":"([ !#-[\]-~]{1,64})"\}$/;

/**
 * Parses and validates an envelope read from Redis. Anything malformed
 * (not JSON, wrong types, missing target) returns a reason instead of throwing.
 *
 * An envelope in the canonical form our publishers write (`{…head…,"data":D}` or
 * `{…head…,"data":D,"offset":N,"epoch":"E"}`, compact JSON, `data` after the head keys) is read
 * in two parts, the head and D, and D is returned as `dataJson` so the receiver forwards it as the
 * frame body instead of serializing the parsed data again. Any other form is parsed whole
 * (and `dataJson` is absent): the answer is the same, only the frame is built from the object.
 */
export function decodeEnvelope(raw: string): TDecodedEnvelope {
  const canonical = splitCanonical(raw);
  if (canonical) {
    const decoded = validateEnvelope(canonical.parsed);
    // Text that could hide a dangerous key is served from the sanitized object instead.
    if (decoded.ok && !mayHideDangerousKeys(canonical.dataJson)) decoded.dataJson = canonical.dataJson;
    return decoded;
  }
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  return validateEnvelope(parsed);
}

/**
 * The canonical form split at its top-level `,"data":`. The first occurrence is that key when
 * the text before it, closed with `}`, is a JSON object by itself (an occurrence inside a
 * string cannot be: a bare `"` never appears in a JSON string; one inside a nested value would
 * leave the head unbalanced). What follows must be one JSON value, then the position tail or
 * `}`; anything else (keys after data, duplicates, whitespace) is left to the whole parse.
 */
function splitCanonical(raw: string): { parsed: Record<string, unknown>; dataJson: string } | undefined {
  const at = raw.indexOf(DATA_KEY);
  if (at <= 0 || raw.charCodeAt(raw.length - 1) !== 0x7d) return undefined;
  let head: unknown;
  try {
    head = parseJsonSafely(`${raw.slice(0, at)}}`);
  } catch {
    return undefined;
  }
  if (!isPlainObject(head) || 'data' in head || 'offset' in head || 'epoch' in head) return undefined;
  let end = raw.length - 1;
  const tailAt = raw.lastIndexOf(',"offset":');
  if (tailAt > at) {
    const position = POSITION_TAIL.exec(raw.slice(tailAt));
    if (position) {
      head.offset = Number(position[1]);
      head.epoch = position[2];
      end = tailAt;
    }
  }
  const dataJson = raw.slice(at + DATA_KEY.length, end);
  // Padding around the value would reach the frame: leave such (foreign) envelopes to the whole parse.
  if (
    dataJson.length === 0 ||
    dataJson.charCodeAt(0) <= 0x20 ||
    dataJson.charCodeAt(dataJson.length - 1) <= 0x20
  ) {
    return undefined;
  }
  try {
    head.data = parseJsonSafely(dataJson);
  } catch {
    return undefined;
  }
  return { parsed: head, dataJson };
}

/** The checks every envelope passes, however it was parsed. */
function validateEnvelope(parsed: unknown): TDecodedEnvelope {
  if (!isPlainObject(parsed)) return { ok: false, reason: 'not an object' };
  const { serverId, type, target, event, data, exclude, offset, epoch, sentAt } = parsed;
  if (typeof serverId !== 'string' || serverId.length === 0) return { ok: false, reason: 'missing serverId' };
  if (!WebSocketMessageTypes.isValid(type)) return { ok: false, reason: 'unknown type' };
  if (typeof event !== 'string' || event.length === 0) return { ok: false, reason: 'missing event' };
  if (type !== WebSocketMessageTypes.BROADCAST && (typeof target !== 'string' || target.length === 0)) {
    return { ok: false, reason: 'missing target' };
  }
  // A room envelope reaches a Bun topic: never one of the helper's internal ones.
  if (type === WebSocketMessageTypes.ROOM && !isBusRoomTarget(target as string)) {
    return { ok: false, reason: 'target is not a room' };
  }
  if (exclude !== undefined && !(Array.isArray(exclude) && exclude.every((id) => typeof id === 'string'))) {
    return { ok: false, reason: 'exclude must be an array of strings' };
  }
  const message: IRedisSocketMessage = { serverId, type, event, data };
  if (typeof target === 'string') message.target = target;
  if (exclude !== undefined) message.exclude = exclude as string[];
  if (typeof sentAt === 'number' && Number.isFinite(sentAt)) message.sentAt = sentAt;
  // A history room's publication carries its position (appended by the publish script).
  if (offset !== undefined || epoch !== undefined) {
    if (
      type !== WebSocketMessageTypes.ROOM ||
      !Number.isSafeInteger(offset) ||
      (offset as number) < 1 ||
      typeof epoch !== 'string' ||
      epoch.length === 0 ||
      epoch.length > MAX_EPOCH_LENGTH
    ) {
      return { ok: false, reason: 'invalid position' };
    }
    message.offset = offset as number;
    message.epoch = epoch;
  }
  return { ok: true, message };
}

/**
 * The envelope's JSON without its closing brace and without `data`: the history publish
 * script appends the data, the offset and the epoch.
 */
export function envelopeHead(message: Omit<IRedisSocketMessage, 'data'>): string {
  return JSON.stringify(message).slice(0, -1);
}
