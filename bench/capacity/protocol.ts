// Commands the capacity run sends its load-client processes over Bun IPC, and the replies.

import type { IHistogramSnapshot } from '../lib/histogram.ts';

export type TCapacityCommand =
  | {
      cmd: 'connect';
      /** Ports of the instances; socket i goes to ports[i % ports.length]. */
      ports: number[];
      count: number;
      /** Loopback source addresses; socket i binds localAddresses[i % localAddresses.length]. */
      localAddresses: string[];
      concurrency: number;
      /** Distinguishes this process's user ids from the others'. */
      tag: string;
      /** The room every socket joins once authenticated. */
      room: string;
      /**
       * Optional, in place of `room`: socket i joins rooms[i % rooms.length] (repeat a name to
       * make its room larger; bench/probes/admin-scale.ts skews rooms this way).
       */
      rooms?: string[];
    }
  /** From now on every socket must receive `expect` benchmark messages, numbered from 0. */
  | { cmd: 'arm'; expect: number }
  | { cmd: 'await'; timeoutMs: number }
  | { cmd: 'close' }
  | { cmd: 'exit' };

export interface ICapacityReply {
  ok: boolean;
  error?: string;
  /** connect: sockets authenticated and joined, sockets that failed, and how long it took. */
  connected?: number;
  failed?: number;
  ms?: number;
  /** await: sockets that received every expected message, out of all of them. */
  reached?: number;
  members?: number;
  /** Benchmark frames received since `arm`, and anomalies: gaps, repeats, frames not understood, closes. */
  received?: number;
  outOfOrder?: number;
  malformed?: number;
  closed?: number;
  /** Receive time minus the send time stamped in the message, for every delivery since `arm`. */
  histogram?: IHistogramSnapshot;
}

/** One capacity scenario's figures (bench/capacity/run.ts; `capacity` in docs/benchmarks.json). */
export interface ICapacityResult {
  name: string;
  status: 'ok' | 'FAILED';
  error?: string;
  /** The instances' `subscriptionMode`. */
  mode: 'pattern' | 'rooms';
  instances: number;
  clientProcesses: number;
  /** Loopback source addresses the client sockets bound. */
  sourceAddresses: string[];
  /** Connections asked for, and authenticated connections the instances held (each one in the room). */
  target: number;
  held: number;
  heldByInstance: number[];
  /** Connections that failed, closed or were not held, plus messages lost, repeated or not understood. */
  errors: number;
  /** Wall time until every client process had all its sockets authenticated and joined. */
  connectMs: number;
  /** Sockets each client process had connecting at once. */
  connectConcurrency: number;
  /** Each instance's CPU time over that, per connection it holds (upgrade, authenticate, join). */
  connectCpuUsPerConnection: number[];
  /** RSS after connecting minus RSS before (both after a full GC), per connection, per instance. */
  rssBeforeBytes: number[];
  rssAfterBytes: number[];
  rssPerConnectionBytes: number[];
  heapPerConnectionBytes: number[];
  /** Redis `used_memory` just before connecting and once every connection is held, and the
   * difference per connection held (its channels in `'rooms'` mode, the instances' buffers). */
  redisUsedMemoryBeforeBytes: number;
  redisUsedMemoryAfterBytes: number;
  redisBytesPerConnection: number;
  /** Redis CPU time (user + system) over the connects, per connection held. */
  redisConnectCpuUsPerConnection: number;
  /** `pubsub_channels` and `pubsub_patterns` once every connection is held. */
  redisChannels: number;
  redisPatterns: number;
  /** One 64-byte `send()` from instance A to the room: deliveries counted, and the time until the last. */
  fanout?: {
    expected: number;
    delivered: number;
    lastMs: number;
    p50Ms: number;
    /** CPU time of each instance from before the send until every client had it (control requests included). */
    serverCpuMs: number[];
    /** The kernel's share of that CPU time (loopback socket writes land there). */
    serverSystemShare: number[];
  };
  /** One message every `intervalMs` from instance A to the room, latency of every delivery. */
  paced?: {
    messages: number;
    intervalMs: number;
    expected: number;
    delivered: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
  };
  wallMs: number;
}
