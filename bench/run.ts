// The benchmark orchestrator: `npm run bench` (or `bun run bench/run.ts`).
//
// For every scale and every server kind it starts two server processes sharing
// one Redis, drives two client processes, and reads CPU time and memory from
// inside the servers before and after each workload. A workload in which any
// client misses, repeats or reorders a message is FAILED: it has no figures and
// the run exits non-zero.

import { cpus, loadavg, totalmem } from 'node:os';
import { capacityPhase, capacityScenarios } from './capacity/run.ts';
import { summarize } from './lib/histogram.ts';
import type { TClientReply } from './lib/ipc.ts';
import {
  fileLimit,
  type IClientProc,
  type IServerProc,
  killAll,
  redisCpuUs,
  settleClients as settleServerClients,
  startClient,
  startRedis,
  startServer,
  stopAll,
} from './lib/procs.ts';
import { MISSED, recoveryPhase } from './lib/recovery.ts';
import { writeOutputs } from './lib/report.ts';
import {
  type IMemorySample,
  type IPublishRequest,
  LATENCY_ROOM,
  ROOM,
  type TServerKind,
} from './lib/shared.ts';
import type { IMachine, IRunResult, IWorkloadResult, TWorkload } from './lib/types.ts';
import { CLUSTER_API_SETTINGS, clusterApiPhase, type IClusterApiResult } from './phases/cluster-api.ts';
import { scalingPhase } from './scaling/run.ts';

// ------------------------------------------------------------------ settings

function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const SCALES = (argValue('--scales') ?? process.env.BENCH_SCALES ?? '1000,5000,10000')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 10);
const KINDS = (
  argValue('--kinds') ?? 'raw,raw-seeds,helper,helper-metrics,helper-fleet,helper-history,ignis,socketio'
).split(',') as TServerKind[];
/** Writes docs/benchmarks.* only for a full run (or when asked). */
const WRITE_DOCS =
  process.argv.includes('--docs') ||
  (argValue('--scales') === undefined &&
    !process.argv.includes('--encrypted-only') &&
    !process.argv.includes('--recovery-only') &&
    !process.argv.includes('--capacity-only') &&
    !process.argv.includes('--scaling-only') &&
    !process.argv.includes('--cluster-api-only'));
/** Time budget per throughput workload; fewer messages are sent when a server is slow. */
const WORKLOAD_MS = Number(argValue('--workload-ms') ?? 4_000);
/** Socket.IO is an order of magnitude slower: a shorter budget keeps the run within five minutes. */
const SOCKETIO_WORKLOAD_MS = Math.round(WORKLOAD_MS * 0.6);
/** The whole run is abandoned (FAILED) past this. */
/** 18 minutes: the per-scale workloads take about 10, the capacity and scaling phases about 5 more. */
const DEADLINE_MS = Number(argValue('--deadline-ms') ?? 18 * 60_000);
const PROFILE_DIR = argValue('--profile');
if (PROFILE_DIR) process.env.BENCH_PROFILE_DIR = PROFILE_DIR;
const PACED_INTERVAL_MS = 2;
const PACED_MESSAGES = 1_500; // 3 s at one per 2 ms: enough samples for a stable p99
const LATENCY_ROOM_MAX = 100;
const CONNECT_CONCURRENCY = 64;
/** Repetitions of each throughput workload for raw Bun and the helper (alternating). */
const REPS = Number(argValue('--reps') ?? 5);
/** Connect rounds for raw Bun and the helper (alternating); the first also gives the memory figure. */
const CONNECT_REPS = 3;
const ROUND_TIMEOUT_MS = 15_000;
/** The encrypted fan-out comparison (helper with the native cipher vs Ignis 0.0.7): clients, 0 to skip. */
const ENCRYPTED_CLIENTS = Number(argValue('--encrypted-clients') ?? 1_000);
/** Room messages per repetition of the encrypted comparison. */
const ENCRYPTED_MESSAGES = 50;
/** Only the encrypted comparison (a short run; no per-scale workloads). */
const ENCRYPTED_ONLY = process.argv.includes('--encrypted-only');
/** The recovery phase (roomcast history vs Socket.IO connection state recovery): clients, 0 to skip. */
const RECOVERY_CLIENTS = Number(argValue('--recovery-clients') ?? 1_000);
/** Only the recovery phase. */
const RECOVERY_ONLY = process.argv.includes('--recovery-only');
/** The cluster-API phase (bench/phases/cluster-api.ts): clients per join round, 0 to skip. */
const CLUSTER_API_CLIENTS = Number(argValue('--cluster-api-clients') ?? 2_000);
/** Only the cluster-API phase. */
const CLUSTER_API_ONLY = process.argv.includes('--cluster-api-only');
/** No per-scale workloads: only one of the separate comparisons. */
/** The capacity phase (bench/capacity/): 19,500 connections on one instance, 50,000 on three, in both subscription modes. */
const CAPACITY_ONLY = process.argv.includes('--capacity-only');
/** The scaling phase (bench/scaling/): pattern vs rooms mode, one Redis vs a 3-master cluster. */
const SCALING_ONLY = process.argv.includes('--scaling-only');
/** Alternating rounds of the four scaling configurations, and messages per run. */
const SCALING_ROUNDS = Number(argValue('--scaling-rounds') ?? 5);
const SCALING_MESSAGES = Number(argValue('--scaling-messages') ?? 8_000);
/** Connections of the capacity phase's scenarios (one instance, three instances), each run in both subscription modes. */
const CAPACITY_SIZES = (argValue('--capacity-sizes') ?? '19500,50000').split(',').map(Number);
const NO_SCALES = ENCRYPTED_ONLY || RECOVERY_ONLY || CAPACITY_ONLY || SCALING_ONLY || CLUSTER_API_ONLY;
const CAPACITY_ON = CAPACITY_ONLY || (!NO_SCALES && !process.argv.includes('--no-capacity'));
const SCALING_ON = SCALING_ONLY || (!NO_SCALES && !process.argv.includes('--no-scaling'));
/** roomcast's history recovery, and Socket.IO's connection state recovery when Socket.IO is benchmarked. */
const RECOVERY_KINDS: TServerKind[] = KINDS.includes('socketio')
  ? ['helper-history', 'helper', 'socketio-csr']
  : ['helper-history', 'helper'];

interface IThroughputSpec {
  workload: TWorkload;
  mode: IPublishRequest['mode'];
  size: number;
  /** Deliveries to aim for (messages × members), within WORKLOAD_MS. */
  deliveries: number;
  /** Deliveries per round: bounds what a socket has queued at once. */
  perRound: number;
  /** A fixed number of messages per repetition instead of a delivery target and a time budget. */
  messages?: number;
  /** Every member decrypts (counts) `encrypted` frames. */
  encrypted?: boolean;
}

const SPECS: Record<string, IThroughputSpec> = {
  'fanout-64': { workload: 'fanout-64', mode: 'room', size: 64, deliveries: 3_000_000, perRound: 50_000 },
  'fanout-4k': { workload: 'fanout-4k', mode: 'room', size: 4096, deliveries: 800_000, perRound: 20_000 },
  'exclude-64': {
    workload: 'exclude-64',
    mode: 'room-exclude',
    size: 64,
    deliveries: 2_000_000,
    perRound: 50_000,
  },
  'broadcast-64': {
    workload: 'broadcast-64',
    mode: 'broadcast',
    size: 64,
    deliveries: 2_000_000,
    perRound: 50_000,
  },
  'cross-64': { workload: 'cross-64', mode: 'send', size: 64, deliveries: 2_000_000, perRound: 50_000 },
  'encrypted-64': {
    workload: 'encrypted-64',
    mode: 'room',
    size: 64,
    deliveries: 0,
    perRound: 10_000,
    messages: ENCRYPTED_MESSAGES,
    encrypted: true,
  },
  // The same fan-out with encryption off: what the encrypted one is compared with.
  'encrypted-64-baseline': {
    workload: 'encrypted-64-baseline',
    mode: 'room',
    size: 64,
    deliveries: 0,
    perRound: 10_000,
    messages: ENCRYPTED_MESSAGES,
  },
};

// ------------------------------------------------------------------ plumbing

const startedAt = Date.now();
/**
 * One redis-server per server kind. The helper, its variants and Ignis publish on the same channel
 * names (the benchmark room's), so on one shared Redis a kind's cross-instance messages reached the
 * other kinds' servers and their clients (late frames of another kind's repetition, and CPU spent
 * outside the measured kind). Each kind gets its own, started on first use.
 */
const redisOfKind = new Map<TServerKind, Promise<number>>();
function redisFor(kind: TServerKind): Promise<number> {
  let port = redisOfKind.get(kind);
  if (port === undefined) {
    port = startRedis().then((redis) => redis.port);
    redisOfKind.set(kind, port);
  }
  return port;
}
const results: IWorkloadResult[] = [];
const failures: string[] = [];

function log(line: string): void {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(6);
  console.log(`[${seconds}s] ${line}`);
}

function pastDeadline(): boolean {
  return Date.now() - startedAt > DEADLINE_MS;
}

class WorkloadFailure extends Error {}

function must(reply: TClientReply, what: string): TClientReply {
  if (!reply.ok) throw new WorkloadFailure(`${what}: ${reply.error ?? 'failed'}`);
  return reply;
}

/** The CPU time (user + system) of each server. */
async function cpuEach(servers: IServerProc[]): Promise<number[]> {
  const samples = await Promise.all(servers.map((s) => s.cpu()));
  return samples.map((s) => s.user + s.system);
}

async function cpuTotal(servers: IServerProc[]): Promise<number> {
  const samples = await Promise.all(servers.map((s) => s.cpu()));
  return samples.reduce((sum, s) => sum + s.user + s.system, 0);
}

/** Kernel (system) CPU time of the servers, to tell socket writes from JavaScript. */
async function cpuSystem(servers: IServerProc[]): Promise<number> {
  const samples = await Promise.all(servers.map((s) => s.cpu()));
  return samples.reduce((sum, s) => sum + s.system, 0);
}

function record(result: IWorkloadResult): void {
  results.push(result);
  if (result.status === 'FAILED') {
    failures.push(`${result.kind} ${result.workload} @${result.clients}: ${result.error}`);
    log(`FAILED ${result.kind} ${result.workload} @${result.clients}: ${result.error}`);
    return;
  }
  const parts = [`${result.kind.padEnd(8)} ${result.workload.padEnd(12)} @${result.clients}`];
  if (result.cpuUsPerDelivery !== undefined)
    parts.push(`${result.cpuUsPerDelivery.toFixed(4)} µs CPU/delivery`);
  if (result.workload === 'recover-100' || result.workload === 'reconnect')
    parts.push(
      `all done in ${Math.round(result.wallMs ?? 0)} ms, server CPU ${Math.round((result.serverCpuUs ?? 0) / 1000)} ms`,
    );
  if (result.deliveriesPerSec !== undefined)
    parts.push(`${Math.round(result.deliveriesPerSec).toLocaleString('en-US')} deliveries/s`);
  if (result.connectsPerSec !== undefined) parts.push(`${Math.round(result.connectsPerSec)} connects/s`);
  if (result.cpuUsPerConnection !== undefined)
    parts.push(`${result.cpuUsPerConnection.toFixed(1)} µs CPU/conn`);
  if (result.memoryPerConnectionBytes !== undefined)
    parts.push(
      `${Math.round(result.memoryPerConnectionBytes)} B/conn (heap ${Math.round(result.heapPerConnectionBytes ?? 0)})`,
    );
  if (result.decryptedSampled !== undefined)
    parts.push(`${result.reorderedSampled ?? 0} of ${result.decryptedSampled} sampled frames out of order`);
  if (result.latency)
    parts.push(
      `p50 ${result.latency.p50Ms.toFixed(2)} p99 ${result.latency.p99Ms.toFixed(2)} max ${result.latency.maxMs.toFixed(2)} ms`,
    );
  log(parts.join('  '));
}

interface IMembership {
  client: IClientProc;
  from: number;
  to: number;
  except?: number;
}

/**
 * Upstream Ignis does not keep a client's encrypted messages in order (its transformer
 * calls finish in any order and are written as they finish): for it, reordered
 * encrypted frames are counted and reported instead of failing the workload. Every
 * frame must still arrive and decrypt.
 */
async function checkClean(
  memberships: IMembership[],
  what: string,
  kind?: TServerKind,
): Promise<TClientReply[]> {
  const reports = await Promise.all(memberships.map((m) => m.client.call({ cmd: 'report' })));
  const checked = ['stray', 'malformed', 'outOfOrder', 'closed', 'decryptErrors'] as const;
  for (const r of reports) {
    const problems = (kind === 'ignis' ? checked : ([...checked, 'encryptedOutOfOrder'] as const))
      .filter((k) => (r[k] ?? 0) > 0)
      .map((k) => `${k}=${r[k]}`);
    if (!r.ok || problems.length > 0) {
      const detail = r.firstAnomaly ? ` (behind=${r.behind ?? 0}; first: ${r.firstAnomaly})` : '';
      throw new WorkloadFailure(`${what}: ${problems.join(' ') || r.error}${detail}`);
    }
  }
  return reports;
}

// ----------------------------------------------------------------- workloads

/** One server kind at one scale: its two instances and its own pair of client processes. */
interface IContext {
  kind: TServerKind;
  clients: number;
  a: IServerProc;
  b: IServerProc;
  pair: IClientProc[];
  /** Clients per client process. */
  halves: [number, number];
  /** Server-side id of the first client of the first process (the excluded sender). */
  firstId?: string;
  /** Cleared when a step failed: the rest of this kind's workloads at this scale are skipped. */
  alive: boolean;
  /** The workloads this context runs (what a failure marks as not run). */
  workloads: TWorkload[];
}

interface IMeasure {
  messages: number;
  members: number;
  cpuUs: number;
  systemUs: number;
  wallMs: number;
  /** CPU µs per delivery of each repetition, to show the spread. */
  perRep: number[];
  /** The CPU time of each accounted server, and Redis's. */
  byInstance: number[];
  redisUs: number;
  /** Encrypted workloads: frames the sampled sockets decrypted, and how many of them came out of order. */
  decrypted: number;
  reordered: number;
}

async function arm(memberships: IMembership[], mode: 'plain' | 'latency' | 'encrypted'): Promise<number> {
  let members = 0;
  for (const m of memberships) {
    const r = must(
      await m.client.call({ cmd: 'arm', from: m.from, to: m.to, except: m.except, mode }),
      'arm',
    );
    members += r.members ?? 0;
  }
  return members;
}

/** Emits messages in rounds; each round waits until every member has received all of it. */
async function throughputOnce(
  spec: IThroughputSpec,
  trigger: IServerProc,
  accounted: IServerProc[],
  memberships: IMembership[],
  reps: number,
  exclude?: string,
): Promise<IMeasure> {
  const members = await arm(memberships, spec.encrypted ? 'encrypted' : 'plain');
  const target = spec.messages ?? Math.max(10, Math.round(spec.deliveries / reps / members));
  const timeBudgetMs = (trigger.kind === 'socketio' ? SOCKETIO_WORKLOAD_MS : WORKLOAD_MS) / reps;
  const batch = Math.max(1, Math.min(64, Math.floor(spec.perRound / members)));
  const systemBefore = await cpuSystem(accounted);
  const instancesBefore = await cpuEach(accounted);
  const redisPort = await redisFor(trigger.kind);
  const redisBefore = redisCpuUs(redisPort);
  const t0 = performance.now();
  let sent = 0;
  let rounds = 0;
  while (sent < target) {
    const count = Math.min(batch, target - sent);
    const waits = memberships.map((m) =>
      m.client.call(
        { cmd: 'await', upto: sent + count, timeoutMs: ROUND_TIMEOUT_MS },
        ROUND_TIMEOUT_MS + 5_000,
      ),
    );
    await trigger.post('/ctl/publish', {
      mode: spec.mode,
      room: ROOM,
      count,
      size: spec.size,
      seq: sent,
      exclude,
    } satisfies IPublishRequest);
    for (const reply of await Promise.all(waits)) must(reply, `round ${rounds}`);
    sent += count;
    rounds++;
    if (spec.messages === undefined && performance.now() - t0 > timeBudgetMs && rounds >= 3) break;
  }
  const wallMs = performance.now() - t0;
  const redisUs = redisCpuUs(redisPort) - redisBefore;
  const byInstance = (await cpuEach(accounted)).map((us, i) => us - instancesBefore[i]!);
  const cpuUs = byInstance.reduce((a, b) => a + b, 0);
  const systemUs = (await cpuSystem(accounted)) - systemBefore;
  const reports = await checkClean(memberships, spec.workload, trigger.kind);
  const sum = (key: 'decrypted' | 'encryptedOutOfOrder') => reports.reduce((n, r) => n + (r[key] ?? 0), 0);
  return {
    messages: sent,
    members,
    cpuUs,
    systemUs,
    wallMs,
    perRep: [cpuUs / (sent * members)],
    byInstance,
    redisUs,
    decrypted: sum('decrypted'),
    reordered: sum('encryptedOutOfOrder'),
  };
}

function everyone(ctx: IContext): IMembership[] {
  return ctx.pair.map((client, i) => ({ client, from: 0, to: ctx.halves[i]! }));
}

function fail(ctx: IContext, workload: TWorkload, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  record({ kind: ctx.kind, clients: ctx.clients, workload, status: 'FAILED', error: message });
  ctx.alive = false;
  markRest(ctx.kind, ctx.clients, `not run: an earlier step failed (${message})`, ctx.workloads);
  if (!(error instanceof WorkloadFailure)) log(`error: ${error instanceof Error ? error.stack : message}`);
}

/**
 * Runs a throughput workload `reps` times for every context, alternating between
 * them, so a change in machine load affects every kind alike. The figures are
 * the totals over the repetitions.
 */
async function throughput(
  ctxs: IContext[],
  name: keyof typeof SPECS,
  reps: number,
  crossInstance = false,
): Promise<void> {
  const spec = SPECS[name]!;
  const totals = new Map<IContext, IMeasure>();
  for (let rep = 0; rep < reps; rep++) {
    for (const ctx of ctxs) {
      if (!ctx.alive || !ctx.workloads.includes(spec.workload)) continue;
      const memberships = everyone(ctx);
      let exclude: string | undefined;
      if (spec.mode === 'room-exclude') {
        memberships[0] = { ...memberships[0]!, except: 0 };
        exclude = ctx.firstId;
      }
      try {
        const m = await throughputOnce(
          spec,
          ctx.a,
          crossInstance ? [ctx.a, ctx.b] : [ctx.a],
          memberships,
          reps,
          exclude,
        );
        const sum = totals.get(ctx);
        totals.set(
          ctx,
          sum
            ? {
                messages: sum.messages + m.messages,
                members: m.members,
                cpuUs: sum.cpuUs + m.cpuUs,
                systemUs: sum.systemUs + m.systemUs,
                wallMs: sum.wallMs + m.wallMs,
                perRep: [...sum.perRep, ...m.perRep],
                byInstance: sum.byInstance.map((us, i) => us + m.byInstance[i]!),
                redisUs: sum.redisUs + m.redisUs,
                decrypted: sum.decrypted + m.decrypted,
                reordered: sum.reordered + m.reordered,
              }
            : m,
        );
      } catch (error) {
        totals.delete(ctx);
        fail(ctx, spec.workload, error);
      }
    }
  }
  for (const [ctx, m] of totals) {
    const deliveries = m.messages * m.members;
    record({
      kind: ctx.kind,
      clients: ctx.clients,
      workload: spec.workload,
      status: 'ok',
      messages: m.messages,
      members: m.members,
      deliveries,
      serverCpuUs: m.cpuUs,
      serverSystemShare: m.systemUs / m.cpuUs,
      ...(crossInstance ? { serverCpuUsByInstance: m.byInstance } : {}),
      redisCpuUs: m.redisUs,
      cpuUsPerDelivery: m.cpuUs / deliveries,
      deliveriesPerSec: deliveries / (m.wallMs / 1000),
      wallMs: m.wallMs,
      repetitions: reps,
      cpuUsPerDeliveryByRep: m.perRep,
      ...(spec.encrypted ? { decryptedSampled: m.decrypted, reorderedSampled: m.reordered } : {}),
    });
  }
}

async function paced(ctx: IContext): Promise<void> {
  if (!ctx.alive || !ctx.workloads.includes('paced')) return;
  try {
    const perProcess = Math.min(LATENCY_ROOM_MAX, ctx.clients) / 2;
    const memberships = ctx.pair.map((client) => ({ client, from: 0, to: perProcess }));
    for (const m of memberships) {
      must(await m.client.call({ cmd: 'join', room: LATENCY_ROOM, from: 0, to: perProcess }), 'join latency');
    }
    const members = await arm(memberships, 'latency');
    const accounted = [ctx.a, ctx.b];
    const cpuBefore = await cpuTotal(accounted);
    const t0 = performance.now();
    const timeoutMs = PACED_MESSAGES * PACED_INTERVAL_MS + ROUND_TIMEOUT_MS;
    const waits = memberships.map((m) =>
      m.client.call({ cmd: 'await', upto: PACED_MESSAGES, timeoutMs }, timeoutMs + 5_000),
    );
    await ctx.a.post('/ctl/pace', {
      room: LATENCY_ROOM,
      count: PACED_MESSAGES,
      intervalMs: PACED_INTERVAL_MS,
      size: 64,
    });
    for (const reply of await Promise.all(waits)) must(reply, 'paced');
    const wallMs = performance.now() - t0;
    const cpuUs = (await cpuTotal(accounted)) - cpuBefore;
    const reports = await checkClean(memberships, 'paced');
    const latency = summarize(reports.map((r) => r.histogram!).filter(Boolean));
    const deliveries = PACED_MESSAGES * members;
    if (latency.samples !== deliveries) {
      throw new WorkloadFailure(`paced: ${latency.samples} latency samples for ${deliveries} deliveries`);
    }
    record({
      kind: ctx.kind,
      clients: ctx.clients,
      workload: 'paced',
      status: 'ok',
      messages: PACED_MESSAGES,
      members,
      deliveries,
      serverCpuUs: cpuUs,
      cpuUsPerDelivery: cpuUs / deliveries,
      deliveriesPerSec: deliveries / (wallMs / 1000),
      wallMs,
      latency,
      intervalMs: PACED_INTERVAL_MS,
    });
  } catch (error) {
    fail(ctx, 'paced', error);
  }
}

/** Both client processes of a context connect their half to `server`. */
async function connectHalves(ctx: IContext, server: IServerProc, encrypted = false): Promise<number> {
  const t0 = performance.now();
  const replies = await Promise.all(
    ctx.pair.map((client, i) =>
      client.call({
        cmd: 'connect',
        kind: ctx.kind,
        url: server.url,
        count: ctx.halves[i]!,
        concurrency: CONNECT_CONCURRENCY,
        encrypted,
        tag: `${i}`,
      }),
    ),
  );
  const ms = performance.now() - t0;
  for (const r of replies) {
    if (!r.ok) throw new WorkloadFailure(`connect: ${r.failed} failed (${r.error})`);
  }
  ctx.firstId = replies[0]?.firstId;
  return ms;
}

async function joinAll(ctx: IContext, room: string): Promise<void> {
  const replies = await Promise.all(
    ctx.pair.map((client, i) => client.call({ cmd: 'join', room, from: 0, to: ctx.halves[i]! })),
  );
  for (const r of replies) must(r, `join ${room}`);
  if (ctx.kind === 'ignis' && room === ROOM) await settleRoom(ctx.a, ctx.clients);
}

/** Waits until the benchmark room holds `expected` members (for a server that does not acknowledge joins). */
async function settleRoom(server: IServerProc, expected: number): Promise<void> {
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${server.port}/ctl/stats`);
    const { roomMembers } = (await res.json()) as { roomMembers?: number };
    if (roomMembers === expected) return;
    if (Date.now() > deadline) {
      throw new WorkloadFailure(`join: the room holds ${roomMembers} members, expected ${expected}`);
    }
    await Bun.sleep(20);
  }
}

async function closeAll(pair: IClientProc[]): Promise<void> {
  await Promise.all(pair.map((c) => c.call({ cmd: 'close' })));
}

/** Waits until a server reports `expected` clients; a timeout fails the workload. */
const settleClients = (server: IServerProc, expected: number) =>
  settleServerClients(server, expected, (message) => new WorkloadFailure(message));

const WORKLOAD_ORDER: TWorkload[] = [
  'connect',
  'fanout-64',
  'fanout-4k',
  'exclude-64',
  'broadcast-64',
  'cross-64',
  'paced',
];
const ENCRYPTED_WORKLOADS: TWorkload[] = ['encrypted-64', 'encrypted-64-baseline'];

/**
 * What each kind runs at every scale. The variants run only what they are compared on (and the
 * connect phase, which also sets their clients up): the second floor its memory and connect rate,
 * metrics on its fan-out and connect rate, history its cross-instance send(), Ignis the plain
 * workloads of issue 14 item 5.
 */
const WORKLOADS_OF: Record<TServerKind, TWorkload[]> = {
  raw: WORKLOAD_ORDER,
  helper: WORKLOAD_ORDER,
  socketio: WORKLOAD_ORDER,
  'raw-seeds': ['connect'],
  'helper-metrics': ['connect', 'fanout-64'],
  'helper-fleet': ['connect', 'fanout-64'],
  'helper-history': ['connect', 'cross-64'],
  ignis: ['connect', 'fanout-64', 'exclude-64'],
  'socketio-csr': [],
};
/** Kinds whose workloads need a second instance. */
const twoInstances = (kind: TServerKind) =>
  WORKLOADS_OF[kind].includes('cross-64') || WORKLOADS_OF[kind].includes('paced');

function markRest(
  kind: TServerKind,
  clients: number,
  error: string,
  workloads: TWorkload[] = WORKLOAD_ORDER,
): void {
  for (const workload of workloads) {
    if (workload === 'encrypted-64-baseline' && kind !== 'helper') continue;
    if (results.some((r) => r.kind === kind && r.clients === clients && r.workload === workload)) continue;
    record({ kind, clients, workload, status: 'FAILED', error });
  }
}

/**
 * For Socket.IO, one official `socket.io-client` joins the warm-up too and must
 * see the same 200 messages, in order: the hand-written Engine.IO client of the
 * load generator is checked against the real one on every run.
 */
async function officialSocketIoWitness(ctx: IContext): Promise<{ done: () => Promise<void> }> {
  const { io } = await import('socket.io-client');
  const socket = io(`http://127.0.0.1:${ctx.a.port}`, {
    transports: ['websocket'],
    auth: { token: 'ok', user: 'witness' },
    reconnection: false,
  });
  const seen: number[] = [];
  socket.on('b', (data: { s: number }) => seen.push(data.s));
  await new Promise<void>((resolve, reject) => {
    socket.on('connect', () => resolve());
    socket.on('connect_error', (error: Error) =>
      reject(new WorkloadFailure(`socket.io-client: ${error.message}`)),
    );
  });
  await socket.timeout(10_000).emitWithAck('join', [ROOM]);
  return {
    async done() {
      const deadline = Date.now() + 10_000;
      while (seen.length < 200 && Date.now() < deadline) await Bun.sleep(10);
      socket.disconnect();
      if (seen.length !== 200 || seen.some((s, i) => s !== i)) {
        throw new WorkloadFailure(
          `socket.io-client witness received ${seen.length} of 200 warm-up messages in order`,
        );
      }
    },
  };
}

/**
 * Connections of the warm-up. The engine optimizes a function after thousands of calls, on a
 * compiler thread whose CPU time the server's figure includes: with 50, the helper's connect path
 * (far more code than the floor's few lines) was still being compiled during the measured connect
 * round, about 4 µs of compiler-thread CPU per connection at 5,000 clients and more at 1,000
 * (`bench/probes/connection-cost.ts`). The first 50 of them join, and take the 200 warm-up messages.
 */
const WARMUP_CONNECTIONS = 1_000;

/** Warm-up: the same paths once with a few clients, so no measured workload pays for compiling them. */
async function warmUp(ctx: IContext, encrypted = false): Promise<void> {
  const [client] = ctx.pair;
  const witness = ctx.kind === 'socketio' ? await officialSocketIoWitness(ctx) : undefined;
  must(
    await client!.call({
      cmd: 'connect',
      kind: ctx.kind,
      url: ctx.a.url,
      count: WARMUP_CONNECTIONS,
      concurrency: 16,
      encrypted,
      tag: 'w',
    }),
    'warm-up connect',
  );
  must(await client!.call({ cmd: 'join', room: ROOM, from: 0, to: 50 }), 'warm-up join');
  if (ctx.kind === 'ignis') await settleRoom(ctx.a, 50);
  must(
    await client!.call({ cmd: 'arm', from: 0, to: 50, mode: encrypted ? 'encrypted' : 'plain' }),
    'warm-up arm',
  );
  const [reached] = await Promise.all([
    client!.call({ cmd: 'await', upto: 200, timeoutMs: ROUND_TIMEOUT_MS }),
    ctx.a.post('/ctl/publish', { mode: 'room', room: ROOM, count: 200, size: 64, seq: 0 }),
  ]);
  must(reached, 'warm-up');
  await checkClean([{ client: client!, from: 0, to: 50 }], 'warm-up', ctx.kind);
  await witness?.done();
  await closeAll(ctx.pair);
  await settleClients(ctx.a, 0);
}

/**
 * Connect + authenticate rate, and resident memory per authenticated connection
 * (on instance A). Memory comes from the first connection of the clients (after a
 * warm-up); the rate and CPU from `reps` rounds in which the kinds take turns to
 * close and reconnect every client.
 */
async function connectPhase(ctxs: IContext[], reps: number): Promise<void> {
  const totals = new Map<
    IContext,
    { ms: number; cpuUs: number; conns: number; before: IMemorySample; after: IMemorySample }
  >();
  for (let rep = 0; rep < reps; rep++) {
    for (const ctx of ctxs) {
      if (!ctx.alive) continue;
      try {
        let before: IMemorySample | undefined;
        if (rep === 0) {
          await warmUp(ctx);
          before = await ctx.a.memory();
        } else {
          await closeAll(ctx.pair);
          await settleClients(ctx.a, 0);
        }
        const cpuBefore = await cpuTotal([ctx.a]);
        const ms = await connectHalves(ctx, ctx.a);
        const cpuUs = (await cpuTotal([ctx.a])) - cpuBefore;
        await settleClients(ctx.a, ctx.clients);
        if (before) {
          const after = await ctx.a.memory();
          totals.set(ctx, { ms, cpuUs, conns: ctx.clients, before, after });
        } else {
          const sum = totals.get(ctx)!;
          totals.set(ctx, {
            ...sum,
            ms: sum.ms + ms,
            cpuUs: sum.cpuUs + cpuUs,
            conns: sum.conns + ctx.clients,
          });
        }
      } catch (error) {
        totals.delete(ctx);
        fail(ctx, 'connect', error);
      }
    }
  }
  for (const [ctx, t] of totals) {
    record({
      kind: ctx.kind,
      clients: ctx.clients,
      workload: 'connect',
      status: 'ok',
      connectsPerSec: t.conns / (t.ms / 1000),
      cpuUsPerConnection: t.cpuUs / t.conns,
      serverCpuUs: t.cpuUs,
      memoryPerConnectionBytes: (t.after.rss - t.before.rss) / ctx.clients,
      heapPerConnectionBytes: (t.after.heapUsed - t.before.heapUsed) / ctx.clients,
      rssBeforeBytes: t.before.rss,
      rssAfterBytes: t.after.rss,
      wallMs: t.ms,
      repetitions: reps,
    });
  }
  for (const ctx of ctxs) {
    if (!ctx.alive) continue;
    try {
      await joinAll(ctx, ROOM);
    } catch (error) {
      fail(ctx, 'fanout-64', error);
    }
  }
}

/** The second client process leaves A and connects its half to B. */
async function splitAcrossInstances(ctx: IContext): Promise<void> {
  if (!ctx.alive || !ctx.workloads.includes('cross-64')) return;
  try {
    must(await ctx.pair[1]!.call({ cmd: 'close' }), 'close');
    await settleClients(ctx.a, ctx.halves[0]);
    const reply = await ctx.pair[1]!.call({
      cmd: 'connect',
      kind: ctx.kind,
      url: ctx.b.url,
      count: ctx.halves[1],
      concurrency: CONNECT_CONCURRENCY,
      encrypted: false,
      tag: '1',
    });
    must(reply, 'connect to B');
    must(await ctx.pair[1]!.call({ cmd: 'join', room: ROOM, from: 0, to: ctx.halves[1] }), 'join on B');
  } catch (error) {
    fail(ctx, 'cross-64', error);
  }
}

/**
 * The encrypted fan-out comparison, at one scale: every client encrypted, the same
 * room messages through each library's outbound transformer (roomcast's helper with
 * its native-cipher ECDH, upstream Ignis with its own ECDH.encrypt), repetitions
 * alternating between them; then the helper's same fan-out with encryption off.
 */
async function encryptedComparison(
  limit: number,
  pairs: Map<TServerKind, IClientProc[]>,
  reps: number,
): Promise<void> {
  const clients = ENCRYPTED_CLIENTS;
  log(
    `--- encrypted fan-out: helper + ignis with ${clients} clients, ${ENCRYPTED_MESSAGES} messages × ${reps}`,
  );
  const ctxs: IContext[] = [];
  try {
    for (const kind of ['helper', 'ignis'] as const) {
      const a = await startServer(kind, 'A', await redisFor(kind), limit);
      const halves: [number, number] = [Math.ceil(clients / 2), Math.floor(clients / 2)];
      ctxs.push({
        kind,
        clients,
        a,
        b: a,
        pair: pairs.get(kind)!,
        halves,
        alive: true,
        workloads: ENCRYPTED_WORKLOADS,
      });
    }
    for (const ctx of ctxs) {
      try {
        await warmUp(ctx, true);
        await connectHalves(ctx, ctx.a, true);
        await joinAll(ctx, ROOM);
      } catch (error) {
        fail(ctx, 'encrypted-64', error);
      }
    }
    await throughput(ctxs, 'encrypted-64', reps);
    const helper = ctxs.find((ctx) => ctx.kind === 'helper' && ctx.alive);
    if (helper) {
      try {
        await closeAll(helper.pair);
        await settleClients(helper.a, 0);
        await connectHalves(helper, helper.a, false);
        await joinAll(helper, ROOM);
      } catch (error) {
        fail(helper, 'encrypted-64-baseline', error);
      }
      await throughput([helper], 'encrypted-64-baseline', reps);
    }
  } catch (error) {
    log(`error: ${error instanceof Error ? error.stack : String(error)}`);
    for (const kind of ['helper', 'ignis'] as const)
      markRest(kind, clients, `not run: ${String(error)}`, ENCRYPTED_WORKLOADS);
  } finally {
    for (const ctx of ctxs) {
      await closeAll(ctx.pair).catch(() => {});
      await ctx.a.stop();
    }
  }
}

/** Every workload for a group of kinds at one scale; the kinds take turns within each workload. */
async function runGroup(
  kinds: TServerKind[],
  clients: number,
  limit: number,
  pairs: Map<TServerKind, IClientProc[]>,
  reps: number,
): Promise<void> {
  log(`--- ${kinds.join(' + ')} with ${clients} clients`);
  const ctxs: IContext[] = [];
  try {
    for (const kind of kinds) {
      const [a, b] = await Promise.all([
        redisFor(kind).then((port) => startServer(kind, 'A', port, limit)),
        twoInstances(kind) ? redisFor(kind).then((port) => startServer(kind, 'B', port, limit)) : undefined,
      ]);
      ctxs.push({
        kind,
        clients,
        a,
        b: b ?? a,
        pair: pairs.get(kind)!,
        halves: [Math.ceil(clients / 2), Math.floor(clients / 2)],
        alive: true,
        workloads: WORKLOADS_OF[kind],
      });
    }
    await connectPhase(ctxs, reps === 1 ? 1 : CONNECT_REPS);
    for (const name of ['fanout-64', 'fanout-4k', 'exclude-64', 'broadcast-64'] as const) {
      await throughput(ctxs, name, reps);
    }
    for (const ctx of ctxs) await splitAcrossInstances(ctx);
    await throughput(ctxs, 'cross-64', reps, true);
    for (const ctx of ctxs) await paced(ctx);
  } catch (error) {
    log(`error: ${error instanceof Error ? error.stack : String(error)}`);
    for (const kind of kinds) markRest(kind, clients, `not run: ${String(error)}`, WORKLOADS_OF[kind]);
  } finally {
    for (const ctx of ctxs) {
      await closeAll(ctx.pair).catch(() => {});
      await Promise.all([...new Set([ctx.a, ctx.b])].map((s) => s.stop()));
    }
  }
}

// ------------------------------------------------------------------- the run

/** A phase of its own (capacity, scaling): skipped past the deadline; a throw is a failure, not the end. */
async function separatePhase<T>(name: string, run: () => Promise<T>): Promise<T | undefined> {
  if (pastDeadline()) {
    failures.push(`${name}: not run: the run passed its deadline`);
    return undefined;
  }
  log(`--- ${name}`);
  try {
    return await run();
  } catch (error) {
    failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    log(`error: ${error instanceof Error ? error.stack : String(error)}`);
    return undefined;
  }
}

function machine(limit: number): IMachine {
  const sh = (cmd: string) => Bun.spawnSync(['sh', '-c', cmd]).stdout.toString().trim();
  const model = /model name\s*:\s*(.+)/.exec(sh('cat /proc/cpuinfo'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return {
    nproc: Number(sh('nproc')) || cpus().length,
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    bun: Bun.version,
    node: sh('node --version'),
    os: sh('uname -sr'),
    fileLimit: limit,
    loadAverageAtStart: loadAverage(),
    packages: Object.fromEntries(
      ['socket.io', '@socket.io/redis-adapter', 'socket.io-client', 'ioredis', '@venizia/ignis-helpers'].map(
        (name) => [name, packageVersion(name)],
      ),
    ),
    redis: sh('redis-server --version').replace(/^Redis server v=(\S+).*$/, '$1'),
  };
}

function packageVersion(name: string): string {
  try {
    return (
      require(new URL(`./node_modules/${name}/package.json`, import.meta.url).pathname) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

function loadAverage(): number[] {
  return loadavg().map((n) => Math.round(n * 100) / 100);
}

async function main(): Promise<number> {
  const limit = fileLimit();
  const info = machine(limit);
  log(
    `${info.nproc} cores (${info.cpuModel}), ${info.memoryGiB} GiB, Bun ${info.bun}, Node ${info.node}, open files ${limit}, load ${info.loadAverageAtStart.join(' ')}`,
  );
  // A server holds every client of a scale plus a few descriptors of its own.
  const skippedScales: Array<{ clients: number; reason: string }> = [];
  const scales = SCALES.filter((n) => {
    if (n + 256 <= limit) return true;
    skippedScales.push({ clients: n, reason: `the open-file limit is ${limit}` });
    log(`skipping ${n} clients: the open-file limit is ${limit}`);
    return false;
  });

  const redis = await startRedis();
  log(`redis-server on port ${redis.port}`);
  // Each kind has its own pair of client processes, so two kinds can hold their clients at once.
  const pairs = new Map<TServerKind, IClientProc[]>();
  let encryptedComparisonOn = ENCRYPTED_CLIENTS > 0 && KINDS.includes('helper');
  if (encryptedComparisonOn && ENCRYPTED_CLIENTS + 256 > limit) {
    skippedScales.push({
      clients: ENCRYPTED_CLIENTS,
      reason: `encrypted comparison: the open-file limit is ${limit}`,
    });
    log(`skipping the encrypted comparison: the open-file limit is ${limit}`);
    encryptedComparisonOn = false;
  }
  if (NO_SCALES && !ENCRYPTED_ONLY) encryptedComparisonOn = false;
  const pairKinds = new Set<TServerKind>(NO_SCALES ? [] : KINDS);
  if (encryptedComparisonOn) for (const kind of ['helper', 'ignis'] as const) pairKinds.add(kind);
  for (const kind of pairKinds) {
    pairs.set(kind, await Promise.all([startClient(`${kind}-0`), startClient(`${kind}-1`)]));
  }
  // Raw Bun and the helper take turns (their ratios are the tight targets); Socket.IO runs alone.
  const interleaved: TServerKind[] = KINDS.filter((k) => k !== 'socketio');
  for (const clients of NO_SCALES ? [] : scales) {
    const groups: TServerKind[][] = [interleaved, KINDS.filter((k) => k === 'socketio')].filter(
      (g) => g.length > 0,
    );
    for (const group of groups) {
      if (pastDeadline()) {
        for (const kind of group) {
          markRest(kind, clients, 'not run: the run passed its deadline', WORKLOADS_OF[kind]);
        }
        continue;
      }
      await runGroup(group, clients, limit, pairs, group.includes('socketio') ? 1 : REPS);
    }
  }
  if (encryptedComparisonOn) {
    if (pastDeadline()) {
      for (const kind of ['helper', 'ignis'] as const) {
        markRest(kind, ENCRYPTED_CLIENTS, 'not run: the run passed its deadline', ENCRYPTED_WORKLOADS);
      }
    } else {
      await encryptedComparison(limit, pairs, REPS);
    }
  }
  for (const pair of pairs.values()) await Promise.all(pair.map((c) => c.stop()));
  const recoveryOn = RECOVERY_CLIENTS > 0 && (!NO_SCALES || RECOVERY_ONLY);
  if (recoveryOn) {
    if (pastDeadline()) {
      for (const kind of RECOVERY_KINDS) {
        record({
          kind,
          clients: RECOVERY_CLIENTS,
          workload: kind === 'helper' ? 'reconnect' : 'recover-100',
          status: 'FAILED',
          error: 'not run: the run passed its deadline',
        });
      }
    } else {
      log(
        `--- recovery: ${RECOVERY_CLIENTS} clients reconnecting at once, each recovering ${MISSED} messages`,
      );
      for (const result of await recoveryPhase(RECOVERY_CLIENTS, redis.port, limit, RECOVERY_KINDS)) {
        record(result);
      }
    }
  }

  let clusterApi: IClusterApiResult | undefined;
  if (CLUSTER_API_CLIENTS > 0 && (!NO_SCALES || CLUSTER_API_ONLY)) {
    if (pastDeadline()) failures.push('cluster-api: not run, the run passed its deadline');
    else {
      log(
        `--- cluster API: join rate presence on/off (${CLUSTER_API_CLIENTS} clients), presence(), requests`,
      );
      try {
        clusterApi = await clusterApiPhase({
          ...CLUSTER_API_SETTINGS,
          redisPort: redis.port,
          clients: CLUSTER_API_CLIENTS,
        });
        log(`cluster API: join rate presence on / off ${clusterApi.joinRatio.toFixed(2)}×`);
      } catch (error) {
        failures.push(`cluster-api: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  // The capacity and scaling phases, each alone on the machine (their processes are their own).
  const capacity = CAPACITY_ON
    ? await separatePhase('capacity', () =>
        capacityPhase(capacityScenarios({ one: CAPACITY_SIZES[0], three: CAPACITY_SIZES[1] }), log),
      )
    : undefined;
  for (const r of capacity ?? []) if (r.status !== 'ok') failures.push(`capacity ${r.name}: ${r.error}`);
  const scaling = SCALING_ON
    ? await separatePhase('scaling', () => scalingPhase(SCALING_ROUNDS, SCALING_MESSAGES, 4_000, log))
    : undefined;
  for (const r of scaling ?? []) {
    if (r.delivered !== r.messages)
      failures.push(
        `scaling ${r.mode} ${r.pubSub} round ${r.round}: ${r.delivered} of ${r.messages} delivered`,
      );
  }

  info.loadAverageAtEnd = loadAverage();
  const run: IRunResult = {
    schema: 1,
    status: failures.length === 0 ? 'ok' : 'FAILED',
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    command:
      process.argv.length > 2 ? `bun run bench/run.ts ${process.argv.slice(2).join(' ')}` : 'npm run bench',
    machine: info,
    config: {
      scales: NO_SCALES ? [] : scales,
      encryptedClients: encryptedComparisonOn ? ENCRYPTED_CLIENTS : 0,
      encryptedMessages: ENCRYPTED_MESSAGES,
      skippedScales,
      latencyRoomMembers: LATENCY_ROOM_MAX,
      pacedIntervalMs: PACED_INTERVAL_MS,
      pacedMessages: PACED_MESSAGES,
      clientProcesses: 2,
      repetitions: REPS,
      recoveryClients: recoveryOn ? RECOVERY_CLIENTS : 0,
    },
    results,
    ...(capacity ? { capacity } : {}),
    ...(scaling ? { scaling } : {}),
    targets: [],
    failures,
    ...(clusterApi ? { clusterApi } : {}),
  };
  await writeOutputs(run, { docs: WRITE_DOCS });
  log(`done in ${(run.durationMs / 1000).toFixed(1)} s: ${run.status}`);
  return run.status === 'ok' ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);
const hardStop = setTimeout(() => {
  console.error('bench: hard time limit reached, killing everything');
  killAll();
  process.exit(2);
}, DEADLINE_MS + 120_000);
hardStop.unref();

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error('bench FAILED:', error);
} finally {
  await stopAll();
}
process.exit(code);
