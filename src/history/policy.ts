import { MAX_EPOCH_LENGTH } from '../bus/envelope.ts';
import { WebSocketHistoryDefaults, WebSocketLimits } from '../common/constants.ts';
import { isPlainObject } from '../utils/json.ts';
import type { IHistoryQuery, IResolvedHistoryPolicy, IStreamPosition, THistoryFn } from './types.ts';

/**
 * Asks `historyFn` about a room and validates the answer. Throws a clear message when the
 * answer is neither null/undefined nor a valid `{ size, ttl, metaTtl? }` (a misconfiguration).
 */
export function resolveHistoryPolicy(
  historyFn: THistoryFn,
  room: string,
  prefix: string,
): IResolvedHistoryPolicy | undefined {
  const policy = historyFn({ room });
  if (policy === null || policy === undefined) return undefined;
  const { size, ttl, metaTtl } = policy as Partial<IResolvedHistoryPolicy>;
  if (
    !Number.isInteger(size) ||
    (size as number) < 1 ||
    (size as number) > WebSocketLimits.MAX_HISTORY_SIZE ||
    !isPositiveMs(ttl) ||
    (metaTtl !== undefined && !isPositiveMs(metaTtl))
  ) {
    throw new Error(
      `${prefix} historyFn returned an invalid policy for room ${JSON.stringify(room)}: expected { size: integer 1..${WebSocketLimits.MAX_HISTORY_SIZE}, ttl: positive ms, metaTtl?: positive ms } or null`,
    );
  }
  const ttlMs = Math.ceil(ttl as number);
  return {
    size: size as number,
    ttl: ttlMs,
    metaTtl: Math.max(Math.ceil(metaTtl ?? WebSocketHistoryDefaults.META_TTL), ttlMs),
  };
}

function isPositiveMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 2 ** 40;
}

/** `{ offset: non-negative safe integer, epoch: non-empty string <= 64 chars }`, or undefined. */
export function readPosition(value: unknown): IStreamPosition | undefined {
  if (!isPlainObject(value)) return undefined;
  const { offset, epoch } = value;
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) return undefined;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH) return undefined;
  return { offset: offset as number, epoch };
}

/**
 * A join's `since` map: undefined when absent, `null` when its shape is wrong (the join is
 * then refused whole), else the positions by room.
 */
export function readSinceMap(value: unknown): Map<string, IStreamPosition> | undefined | null {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) return null;
  const positions = new Map<string, IStreamPosition>();
  for (const [room, entry] of Object.entries(value)) {
    const position = readPosition(entry);
    if (!position) return null;
    positions.set(room, position);
  }
  return positions;
}

/**
 * `{ since?, limit?, reverse? }` of a history request, validated; `limit` defaults to and is
 * clamped at `WebSocketLimits.MAX_HISTORY_LIMIT`. Undefined when the shape is wrong.
 */
export function readHistoryQuery(value: {
  since?: unknown;
  limit?: unknown;
  reverse?: unknown;
}): IHistoryQuery | undefined {
  const { since, limit, reverse } = value;
  const query: IHistoryQuery = {
    limit: WebSocketLimits.MAX_HISTORY_LIMIT,
    reverse: false,
  };
  if (since !== undefined) {
    const position = readPosition(since);
    if (!position) return undefined;
    query.since = position;
  }
  if (limit !== undefined) {
    if (!Number.isSafeInteger(limit) || (limit as number) < 0) return undefined;
    query.limit = Math.min(limit as number, WebSocketLimits.MAX_HISTORY_LIMIT);
  }
  if (reverse !== undefined) {
    if (typeof reverse !== 'boolean') return undefined;
    query.reverse = reverse;
  }
  return query;
}

/** A random epoch: unique across processes and calls (a process prefix plus a counter). */
export function epochSource(): () => string {
  const prefix = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
  let counter = 0;
  return () => `${prefix}${(counter++).toString(36)}`;
}
