import { type TWebSocketMessageType, WebSocketChannels, WebSocketMessageTypes } from '../common/constants.ts';
import type { IRedisSocketMessage } from '../common/types.ts';
import { MAX_EPOCH_LENGTH } from '../history/policy.ts';
import { isPlainObject, parseJsonSafely } from '../utils/json.ts';

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

/**
 * Parses and validates an envelope read from Redis. Anything malformed
 * (not JSON, wrong types, missing target) returns a reason instead of throwing.
 */
export function decodeEnvelope(
  raw: string,
): { ok: true; message: IRedisSocketMessage } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isPlainObject(parsed)) return { ok: false, reason: 'not an object' };
  const { serverId, type, target, event, data, exclude, offset, epoch, sentAt } = parsed;
  if (typeof serverId !== 'string' || serverId.length === 0) return { ok: false, reason: 'missing serverId' };
  if (!WebSocketMessageTypes.isValid(type)) return { ok: false, reason: 'unknown type' };
  if (typeof event !== 'string' || event.length === 0) return { ok: false, reason: 'missing event' };
  if (type !== WebSocketMessageTypes.BROADCAST && (typeof target !== 'string' || target.length === 0)) {
    return { ok: false, reason: 'missing target' };
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
