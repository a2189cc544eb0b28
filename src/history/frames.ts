import { frameFromJson } from '../utils/json.ts';

/**
 * The tail that turns a frame `{"event":…,"data":…}` into a positioned one: it replaces the
 * frame's closing brace. Built once per publication and shared by every recipient (the
 * encrypted ones get it after their transformed frame, outside the ciphertext).
 */
export function positionTail(room: string, offset: number, epoch: string): string {
  return `,"room":${JSON.stringify(room)},"offset":${offset},"epoch":${JSON.stringify(epoch)}}`;
}

/** `{"event":E,"data":D}` + tail → `{"event":E,"data":D,"room":R,"offset":N,"epoch":"X"}`. */
export function withPosition(frame: string, tail: string): string {
  return frame.slice(0, -1) + tail;
}

/** A positioned publication frame straight from serialized data. */
export function positionedFrame(event: string, dataJson: string | undefined, tail: string): string {
  return withPosition(frameFromJson(event, dataJson), tail);
}
