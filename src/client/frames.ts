import type { IFrame, IStreamPosition } from './types.ts';

export type { IFrame } from './types.ts';

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{ offset, epoch }` as the protocol defines it, or undefined. */
export function asPosition(value: unknown): IStreamPosition | undefined {
  return isRecord(value) &&
    Number.isSafeInteger(value.offset) &&
    (value.offset as number) >= 0 &&
    typeof value.epoch === 'string' &&
    value.epoch !== ''
    ? { offset: value.offset as number, epoch: value.epoch }
    : undefined;
}

export function encodeFrame(event: string, data?: unknown, id?: string): string {
  const frame: IFrame = data === undefined ? { event } : { event, data };
  if (id !== undefined) frame.id = id;
  return JSON.stringify(frame);
}

/** A server frame, or the reason it is not one. Never throws. */
export function decodeFrame(raw: unknown): IFrame | string {
  if (typeof raw !== 'string') return 'binary frame (the protocol is JSON text)';
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return 'frame is not valid JSON';
  }
  if (!isRecord(value) || typeof value.event !== 'string' || value.event === '') {
    return 'frame is not an object with a string "event"';
  }
  const frame: IFrame = { event: value.event, data: value.data };
  if (typeof value.id === 'string') frame.id = value.id;
  if (typeof value.ack === 'string') frame.ack = value.ack;
  const position = typeof value.room === 'string' && asPosition(value);
  if (position) frame.position = { room: value.room as string, ...position };
  return frame;
}
