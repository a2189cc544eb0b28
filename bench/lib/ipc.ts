// Commands the orchestrator sends a client process over Bun IPC, and the replies.

import type { IHistogramSnapshot } from './histogram.ts';
import type { TServerKind } from './shared.ts';

export type TCountMode = 'plain' | 'latency' | 'encrypted';

export type TClientCommand =
  | {
      cmd: 'connect';
      kind: TServerKind;
      url: string;
      count: number;
      concurrency: number;
      encrypted: boolean;
      /** Distinguishes this process's user ids from the other's. */
      tag: string;
    }
  | { cmd: 'join'; room: string; from: number; to: number }
  | {
      cmd: 'arm';
      /** Sockets [from, to) must receive every message of the next workload… */
      from: number;
      to: number;
      /** …except this one, which must receive none. */
      except?: number;
      mode: TCountMode;
    }
  | { cmd: 'await'; upto: number; timeoutMs: number }
  | { cmd: 'report' }
  | { cmd: 'close' }
  | { cmd: 'exit' };

export interface IConnectReply {
  ok: boolean;
  connected: number;
  failed: number;
  ms: number;
  /** Server-side id of socket 0 (the sender left out in the exclude workload). */
  firstId?: string;
  error?: string;
}

export interface IReportReply {
  ok: boolean;
  /** Frames received by a socket that was not to receive any. */
  stray: number;
  /** Frames that were not benchmark messages of the expected kind. */
  malformed: number;
  /** Sequence gaps, repeats or reorderings. */
  outOfOrder: number;
  /** Of those, frames whose sequence number was below the next expected one (a repeat or a late frame). */
  behind: number;
  /** The first such anomaly of the workload, described (socket, expected and received numbers, the frame's start). */
  firstAnomaly?: string;
  /** Sockets that closed during the workload. */
  closed: number;
  /** Sampled encrypted frames that failed to decrypt. */
  decryptErrors: number;
  /** Sampled encrypted frames that decrypted to another message than the next one in order. */
  encryptedOutOfOrder: number;
  decrypted: number;
  histogram?: IHistogramSnapshot;
}

export interface IAwaitReply {
  ok: boolean;
  reached: number;
  members: number;
  error?: string;
}

export type TClientReply = { ok: boolean; error?: string } & Partial<
  IConnectReply & IReportReply & IAwaitReply
>;
