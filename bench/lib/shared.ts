// Definitions shared by the orchestrator, the servers under test and the client processes.

/** `ignis`: upstream Ignis 0.0.7, run in the encrypted fan-out comparison. */
export type TServerKind = 'raw' | 'helper' | 'socketio' | 'ignis';

/** The room every client joins for the fan-out workloads. */
export const ROOM = 'bench';
/** The smaller room the paced-latency workload sends to. */
export const LATENCY_ROOM = 'latency';
/** The event name of every benchmark message. */
export const EVENT = 'b';

/** How a server emits one benchmark message. */
export type TPublishMode = 'room' | 'room-exclude' | 'broadcast' | 'send';

export interface IPublishRequest {
  mode: TPublishMode;
  room: string;
  /** Messages to emit, synchronously, in this request. */
  count: number;
  /** Serialized size of each message's `data`, in bytes. */
  size: number;
  /** Sequence number of the first message. */
  seq: number;
  /** Server-side id of the client to leave out (mode `room-exclude`). */
  exclude?: string;
}

export interface IPaceRequest {
  room: string;
  count: number;
  intervalMs: number;
  size: number;
}

export interface ICpuSample {
  /** Microseconds, from process.cpuUsage() inside the server process. */
  user: number;
  system: number;
}

export interface IMemorySample {
  rss: number;
  heapUsed: number;
}

/** What a frame starts with, up to the first digit of the sequence number. */
export function framePrefix(kind: TServerKind): string {
  return kind === 'socketio' ? `42["${EVENT}",{"s":` : `{"event":"${EVENT}","data":{"s":`;
}

const padCache = new Map<number, string>();
function pad(length: number): string {
  let text = padCache.get(length);
  if (text === undefined) {
    text = 'x'.repeat(length);
    padCache.set(length, text);
  }
  return text;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface IBenchData {
  s: number;
  t: number;
  p: string;
}

/**
 * The data of one message: `{ s: seq, t: sendTime, p: padding }`, padded so that
 * `JSON.stringify(data)` is exactly `size` bytes (or as small as it gets).
 */
export function makeData(seq: number, size: number): IBenchData {
  const t = nowMs();
  const bare = 18 + String(seq).length + String(t).length; // {"s":,"t":,"p":""}
  return { s: seq, t, p: pad(Math.max(0, size - bare)) };
}
