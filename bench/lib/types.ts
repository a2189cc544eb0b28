// The shape of a run's JSON (bench/results/latest.json, docs/benchmarks.json).

import type { ICapacityResult } from '../capacity/protocol.ts';
import type { IClusterApiResult } from '../phases/cluster-api.ts';
import type { IRoomKeysResult } from '../phases/room-keys.ts';
import type { ISendThroughputResult } from '../phases/send-throughput.ts';
import type { IScalingResult } from '../scaling/run.ts';
import type { ILatencySummary } from './histogram.ts';
import type { TServerKind } from './shared.ts';

export type TWorkload =
  | 'connect'
  | 'fanout-64'
  | 'fanout-4k'
  | 'exclude-64'
  | 'broadcast-64'
  | 'cross-64'
  | 'paced'
  | 'encrypted-64'
  | 'encrypted-64-baseline'
  /** The recovery phase: N clients reconnect at once, each recovering 100 missed messages. */
  | 'recover-100'
  /** Its baseline: the same clients reconnecting at once to a room without history (join only). */
  | 'reconnect';

export interface IWorkloadResult {
  kind: TServerKind;
  /** Authenticated clients connected during the workload. */
  clients: number;
  workload: TWorkload;
  status: 'ok' | 'FAILED';
  error?: string;
  /** Messages the server emitted. */
  messages?: number;
  /** Clients that had to receive each message. */
  members?: number;
  /** messages × members: every one was received and checked. */
  deliveries?: number;
  /** CPU time (user + system) of the server process(es), from process.cpuUsage() inside them. */
  serverCpuUs?: number;
  /** Cross-instance workloads: that CPU time of each instance (A, the sender, then B). */
  serverCpuUsByInstance?: number[];
  /** Throughput workloads: redis-server's own CPU time over the workload (not in serverCpuUs). */
  redisCpuUs?: number;
  /** Share of that CPU time spent in the kernel (socket writes on loopback land there). */
  serverSystemShare?: number;
  cpuUsPerDelivery?: number;
  deliveriesPerSec?: number;
  wallMs?: number;
  /** Throughput workloads: how many alternating repetitions the totals add up. */
  repetitions?: number;
  cpuUsPerDeliveryByRep?: number[];
  /** Encrypted workloads: frames the sampled sockets decrypted and checked… */
  decryptedSampled?: number;
  /** …and how many of those arrived out of order (tolerated, and counted, for upstream Ignis only). */
  reorderedSampled?: number;
  // connect
  connectsPerSec?: number;
  cpuUsPerConnection?: number;
  memoryPerConnectionBytes?: number;
  /** JavaScript heap growth per connection, after GC (part of the RSS figure). */
  heapPerConnectionBytes?: number;
  rssBeforeBytes?: number;
  rssAfterBytes?: number;
  // paced
  latency?: ILatencySummary;
  intervalMs?: number;
}

export interface IMachine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  bun: string;
  node: string;
  os: string;
  fileLimit: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  /** Versions of the benchmark's own dependencies (bench/node_modules) and of redis-server. */
  packages: Record<string, string>;
  redis: string;
}

export interface ITargetCheck {
  id: string;
  label: string;
  /** `<=` ratios must stay at or below the limit, `>=` at or above it. */
  op: '<=' | '>=';
  limit: number;
  unit: string;
  /** One figure per scale at which both sides of the ratio were measured. */
  values: Array<{ clients: number; value: number | null; holds: boolean | null }>;
  holds: boolean | null;
}

export interface IRunResult {
  schema: 1;
  status: 'ok' | 'FAILED';
  startedAt: string;
  durationMs: number;
  command: string;
  machine: IMachine;
  config: {
    scales: number[];
    /** Clients of the encrypted fan-out comparison (helper vs Ignis); 0 when it did not run. */
    encryptedClients: number;
    /** Room messages per repetition in that comparison. */
    encryptedMessages: number;
    skippedScales: Array<{ clients: number; reason: string }>;
    latencyRoomMembers: number;
    pacedIntervalMs: number;
    pacedMessages: number;
    clientProcesses: number;
    repetitions: number;
    /** Clients of the recovery phase (each recovers 100 missed messages); 0 or absent when it did not run. */
    recoveryClients?: number;
  };
  results: IWorkloadResult[];
  /** The capacity phase (bench/capacity/run.ts): connections held on one instance and on three. */
  capacity?: ICapacityResult[];
  /** The scaling phase (bench/scaling/run.ts): every run of every configuration, with its round. */
  scaling?: IScalingResult[];
  targets: ITargetCheck[];
  failures: string[];
  /** The cluster-API phase (bench/phases/cluster-api.ts), when it ran. */
  clusterApi?: IClusterApiResult;
  /** The sealed-rooms phase (bench/phases/room-keys.ts), when it ran. */
  roomKeys?: IRoomKeysResult;
  /** The send-throughput phase (bench/phases/send-throughput.ts). */
  sendThroughput?: ISendThroughputResult;
}
