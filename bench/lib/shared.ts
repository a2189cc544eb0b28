// Definitions shared by the orchestrator, the servers under test and the client processes.

/**
 * `ignis`: upstream Ignis 0.0.7. The variants run the same server file with one switch:
 * `raw-seeds` is the floor subscribing the four topics the seeds promise (client id, broadcast,
 * the two default rooms); `helper-metrics` is the helper with `metrics: true`; `helper-fleet` the
 * helper announcing itself in the fleet registry (`fleet`, every second); `helper-history`
 * is the helper with `historyFn` keeping history for the benchmark room; `socketio-csr` is
 * Socket.IO with its in-memory adapter and `connectionStateRecovery` (the recovery phase only).
 */
export type TServerKind =
  | 'raw'
  | 'raw-seeds'
  | 'helper'
  | 'helper-metrics'
  | 'helper-fleet'
  | 'helper-history'
  | 'socketio'
  | 'socketio-csr'
  | 'ignis';

/** The wire protocol a kind speaks, which is what a client process needs to know. */
export type TProtocol = 'raw' | 'socketio' | 'ignis';

export function protocolOf(kind: TServerKind): TProtocol {
  if (kind === 'socketio' || kind === 'socketio-csr') return 'socketio';
  return kind === 'ignis' ? 'ignis' : 'raw';
}

/** The server file of a kind, and the environment switch of a variant. */
export function serverOf(kind: TServerKind): { file: string; env: Record<string, string> } {
  switch (kind) {
    case 'raw-seeds':
      return { file: 'raw.ts', env: { BENCH_RAW_SEED_TOPICS: '1' } };
    case 'helper-metrics':
      return { file: 'helper.ts', env: { BENCH_METRICS: '1' } };
    case 'helper-history':
      return { file: 'helper.ts', env: { BENCH_HISTORY: '1' } };
    case 'helper-fleet':
      return { file: 'helper.ts', env: { BENCH_FLEET: '1' } };
    case 'socketio':
      return { file: 'socketio.mjs', env: {} };
    case 'socketio-csr':
      return { file: 'socketio.mjs', env: { BENCH_CSR: '1' } };
    default:
      return { file: `${kind}.ts`, env: {} };
  }
}

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
  return protocolOf(kind) === 'socketio' ? `42["${EVENT}",{"s":` : `{"event":"${EVENT}","data":{"s":`;
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
