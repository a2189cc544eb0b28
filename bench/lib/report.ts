// Turns a run's JSON into the console table, bench/results/latest.json and the
// docs (docs/benchmarks.json, .md, .svg). Every figure comes from the JSON.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  CAPACITY_HEADER,
  capacityRows,
  capacitySection,
  SCALING_HEADER,
  scalingRows,
  scalingSection,
} from '../capacity/report.ts';
import { clusterApiSection } from '../phases/cluster-api.ts';
import { roomKeysSection } from '../phases/room-keys.ts';
import { sendThroughputSection } from '../phases/send-throughput.ts';
import type { TServerKind } from './shared.ts';
import type { IRunResult, ITargetCheck, IWorkloadResult, TWorkload } from './types.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const KIND_LABEL: Record<TServerKind, string> = {
  raw: 'raw Bun',
  helper: 'roomcast helper',
  socketio: 'Socket.IO 4',
  ignis: 'Ignis 0.0.7',
  'raw-seeds': 'raw Bun, four topics',
  'helper-metrics': 'helper, metrics on',
  'helper-fleet': 'helper, fleet registry on',
  'helper-history': 'helper, history room',
  'helper-spec': 'helper, spec transformer',
  'socketio-csr': 'Socket.IO 4, connection state recovery',
};
const WORKLOAD_LABEL: Record<TWorkload, string> = {
  connect: 'connect + authenticate',
  'fanout-64': 'room fan-out, 64 B',
  'fanout-4k': 'room fan-out, 4 KB',
  'exclude-64': 'room fan-out excluding the sender, 64 B',
  'broadcast-64': 'broadcast, 64 B',
  'cross-64': 'cross-instance send() to a room, 64 B',
  paced: 'paced cross-instance, 1 message / 2 ms',
  'encrypted-64': 'encrypted room fan-out (AES-256-GCM, every client), 64 B',
  'encrypted-64-baseline': 'the same room fan-out with encryption off, 64 B',
  'recover-100': 'clients reconnecting at once, each recovering 100 missed messages',
  reconnect: 'the same clients reconnecting at once to a room without history',
};

// ------------------------------------------------------------------ lookups

function find(run: IRunResult, kind: TServerKind, clients: number, workload: TWorkload) {
  return run.results.find((r) => r.kind === kind && r.clients === clients && r.workload === workload);
}

function ok(r: IWorkloadResult | undefined): r is IWorkloadResult {
  return r !== undefined && r.status === 'ok';
}

type TMetric = (r: IWorkloadResult) => number | undefined;
const cpuPerDelivery: TMetric = (r) => r.cpuUsPerDelivery;
const connectRate: TMetric = (r) => r.connectsPerSec;
const memory: TMetric = (r) => r.memoryPerConnectionBytes;
const p99: TMetric = (r) => r.latency?.p99Ms;

function ratio(
  run: IRunResult,
  clients: number,
  workload: TWorkload,
  metric: TMetric,
  over: TServerKind,
  under: TServerKind,
): number | null {
  const a = find(run, over, clients, workload);
  const b = find(run, under, clients, workload);
  if (!ok(a) || !ok(b)) return null;
  const x = metric(a);
  const y = metric(b);
  return x === undefined || y === undefined || y === 0 ? null : x / y;
}

// ------------------------------------------------------------------ targets

interface ITargetSpec {
  id: string;
  label: string;
  op: '<=' | '>=';
  limit: number;
  unit: string;
  value: (run: IRunResult, clients: number) => number | null;
  /** Scales it is checked at; default every scale of the run. */
  clientsOf?: (run: IRunResult) => number[];
}

/** The encrypted comparison runs at one scale of its own. */
const encryptedScale = (run: IRunResult): number[] =>
  run.config.encryptedClients > 0 ? [run.config.encryptedClients] : [];

const TARGETS: ITargetSpec[] = [
  {
    id: 'fanout-64-cpu',
    label: 'room fan-out 64 B: server CPU per delivered message, helper ÷ raw',
    op: '<=',
    limit: 1.05,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-64', cpuPerDelivery, 'helper', 'raw'),
  },
  {
    id: 'fanout-4k-cpu',
    label: 'room fan-out 4 KB: server CPU per delivered message, helper ÷ raw',
    op: '<=',
    limit: 1.05,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-4k', cpuPerDelivery, 'helper', 'raw'),
  },
  {
    id: 'exclude-cpu',
    label: 'fan-out excluding the sender: server CPU per delivered message, helper ÷ raw',
    op: '<=',
    limit: 1.3,
    unit: '×',
    value: (run, n) => ratio(run, n, 'exclude-64', cpuPerDelivery, 'helper', 'raw'),
  },
  {
    id: 'cross-cpu',
    label: 'cross-instance send(): server CPU per delivered message (both instances), helper ÷ raw',
    op: '<=',
    limit: 1.3,
    unit: '×',
    value: (run, n) => ratio(run, n, 'cross-64', cpuPerDelivery, 'helper', 'raw'),
  },
  {
    id: 'memory',
    label: 'resident memory per authenticated connection, helper ÷ raw',
    op: '<=',
    limit: 1.25,
    unit: '×',
    value: (run, n) => ratio(run, n, 'connect', memory, 'helper', 'raw'),
  },
  {
    id: 'connect-rate',
    label: 'connect + authenticate rate, helper ÷ raw',
    op: '>=',
    limit: 0.9,
    unit: '×',
    value: (run, n) => ratio(run, n, 'connect', connectRate, 'helper', 'raw'),
  },
  {
    id: 'paced-p99',
    label: 'paced cross-instance delivery latency p99 (helper)',
    op: '<=',
    limit: 2,
    unit: 'ms',
    value: (run, n) => {
      const r = find(run, 'helper', n, 'paced');
      return ok(r) ? (p99(r) ?? null) : null;
    },
  },
  {
    id: 'socketio-fanout',
    label: 'room fan-out 64 B: server CPU per delivered message, Socket.IO ÷ helper',
    op: '>=',
    limit: 10,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-64', cpuPerDelivery, 'socketio', 'helper'),
  },
  {
    id: 'socketio-fanout-4k',
    label: 'room fan-out 4 KB: server CPU per delivered message, Socket.IO ÷ helper',
    op: '>=',
    limit: 10,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-4k', cpuPerDelivery, 'socketio', 'helper'),
  },
  {
    id: 'memory-seeds',
    label: 'resident memory per authenticated connection, helper ÷ raw Bun subscribing the four seed topics',
    op: '<=',
    limit: 1.25,
    unit: '×',
    value: (run, n) => ratio(run, n, 'connect', memory, 'helper', 'raw-seeds'),
  },
  {
    id: 'metrics-fanout',
    label: 'room fan-out 64 B: server CPU per delivered message, helper with `metrics: true` ÷ without',
    op: '<=',
    limit: 1.03,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-64', cpuPerDelivery, 'helper-metrics', 'helper'),
  },
  {
    id: 'fleet-fanout',
    label:
      'room fan-out 64 B: server CPU per delivered message, helper with the `fleet` registry on ÷ without',
    op: '<=',
    limit: 1.03,
    unit: '×',
    value: (run, n) => ratio(run, n, 'fanout-64', cpuPerDelivery, 'helper-fleet', 'helper'),
  },
  {
    id: 'fleet-connect',
    label: 'connect + authenticate: server CPU per connection, helper with the `fleet` registry on ÷ without',
    op: '<=',
    limit: 1.05,
    unit: '×',
    value: (run, n) => ratio(run, n, 'connect', cpuPerConnection, 'helper-fleet', 'helper'),
  },
  {
    id: 'history-send',
    label:
      'cross-instance send() 64 B: server CPU per delivered message, history room ÷ room without history',
    op: '<=',
    limit: 1.2,
    unit: '×',
    value: (run, n) => ratio(run, n, 'cross-64', cpuPerDelivery, 'helper-history', 'helper'),
  },
  {
    id: 'encrypted-vs-ignis',
    label: 'encrypted room fan-out: server CPU per delivered message, Ignis 0.0.7 ÷ helper',
    op: '>=',
    limit: 5,
    unit: '×',
    value: (run, n) => ratio(run, n, 'encrypted-64', cpuPerDelivery, 'ignis', 'helper'),
    clientsOf: encryptedScale,
  },
  {
    id: 'encrypted-spec-vs-ignis',
    label:
      "encrypted room fan-out with the specification's transformer (CryptoKey, awaited ECDH.encrypt): server CPU per delivered message, helper ÷ Ignis 0.0.7",
    op: '<=',
    limit: 1,
    unit: '×',
    value: (run, n) => ratio(run, n, 'encrypted-64', cpuPerDelivery, 'helper-spec', 'ignis'),
    clientsOf: encryptedScale,
  },
  {
    id: 'encrypted-vs-plain',
    label: 'encrypted room fan-out: server CPU per delivered message, helper encrypted ÷ unencrypted',
    op: '<=',
    limit: 10,
    unit: '×',
    value: (run, n) => {
      const on = find(run, 'helper', n, 'encrypted-64');
      const off = find(run, 'helper', n, 'encrypted-64-baseline');
      if (!ok(on) || !ok(off) || !on.cpuUsPerDelivery || !off.cpuUsPerDelivery) return null;
      return on.cpuUsPerDelivery / off.cpuUsPerDelivery;
    },
    clientsOf: encryptedScale,
  },
];

const isEncryptedTarget = (t: { id: string }) => t.id.startsWith('encrypted-');

export function evaluateTargets(run: IRunResult): ITargetCheck[] {
  return TARGETS.map((t) => {
    const values = (t.clientsOf?.(run) ?? run.config.scales).map((clients) => {
      const value = t.value(run, clients);
      const holds = value === null ? null : t.op === '<=' ? value <= t.limit : value >= t.limit;
      return { clients, value, holds };
    });
    const measured = values.filter((v) => v.holds !== null);
    const holds = measured.length === 0 ? null : measured.every((v) => v.holds);
    return { id: t.id, label: t.label, op: t.op, limit: t.limit, unit: t.unit, values, holds };
  });
}

// ------------------------------------------------------------------ formatting

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number) => n.toFixed(digits);
function us(n: number): string {
  return n >= 10 ? fixed(n, 1) : n >= 1 ? fixed(n, 2) : fixed(n, 3);
}
const fmtRatio = (n: number | null) => (n === null ? '—' : `${n >= 10 ? fixed(n, 1) : fixed(n, 2)}×`);

interface IRow {
  label: string;
  workload: TWorkload;
  metric: TMetric;
  format: (n: number) => string;
  /** A share, not a quantity: no ratio columns. */
  noRatio?: boolean;
}

const ROWS: IRow[] = [
  { label: 'connect + auth rate (connections/s)', workload: 'connect', metric: connectRate, format: int },
  {
    label: 'connect + auth: server CPU per connection (µs)',
    workload: 'connect',
    metric: (r) => r.cpuUsPerConnection,
    format: us,
  },
  {
    label: 'memory per authenticated connection (bytes RSS)',
    workload: 'connect',
    metric: memory,
    format: int,
  },
  {
    label: 'room fan-out 64 B: CPU µs / delivered msg',
    workload: 'fanout-64',
    metric: cpuPerDelivery,
    format: us,
  },
  {
    label: 'room fan-out 64 B: delivered msgs/s',
    workload: 'fanout-64',
    metric: (r) => r.deliveriesPerSec,
    format: int,
  },
  {
    label: 'room fan-out 64 B: kernel share of server CPU',
    workload: 'fanout-64',
    metric: (r) => r.serverSystemShare,
    format: (n) => `${Math.round(n * 100)} %`,
    noRatio: true,
  },
  {
    label: 'room fan-out 4 KB: CPU µs / delivered msg',
    workload: 'fanout-4k',
    metric: cpuPerDelivery,
    format: us,
  },
  {
    label: 'room fan-out 4 KB: kernel share of server CPU',
    workload: 'fanout-4k',
    metric: (r) => r.serverSystemShare,
    format: (n) => `${Math.round(n * 100)} %`,
    noRatio: true,
  },
  {
    label: 'room fan-out 4 KB: delivered msgs/s',
    workload: 'fanout-4k',
    metric: (r) => r.deliveriesPerSec,
    format: int,
  },
  {
    label: 'fan-out excluding sender: CPU µs / delivered msg',
    workload: 'exclude-64',
    metric: cpuPerDelivery,
    format: us,
  },
  {
    label: 'fan-out excluding sender: delivered msgs/s',
    workload: 'exclude-64',
    metric: (r) => r.deliveriesPerSec,
    format: int,
  },
  {
    label: 'broadcast: CPU µs / delivered msg',
    workload: 'broadcast-64',
    metric: cpuPerDelivery,
    format: us,
  },
  {
    label: 'broadcast: delivered msgs/s',
    workload: 'broadcast-64',
    metric: (r) => r.deliveriesPerSec,
    format: int,
  },
  {
    label: 'cross-instance send(): CPU µs / delivered msg (A+B)',
    workload: 'cross-64',
    metric: cpuPerDelivery,
    format: us,
  },
  {
    label: 'cross-instance send(): delivered msgs/s',
    workload: 'cross-64',
    metric: (r) => r.deliveriesPerSec,
    format: int,
  },
  {
    label: 'paced latency p50 (ms)',
    workload: 'paced',
    metric: (r) => r.latency?.p50Ms,
    format: (n) => fixed(n, 2),
  },
  { label: 'paced latency p99 (ms)', workload: 'paced', metric: p99, format: (n) => fixed(n, 2) },
  {
    label: 'paced latency max (ms)',
    workload: 'paced',
    metric: (r) => r.latency?.maxMs,
    format: (n) => fixed(n, 2),
  },
];

function cell(run: IRunResult, kind: TServerKind, clients: number, row: IRow): string {
  const r = find(run, kind, clients, row.workload);
  if (!r) return '—';
  if (r.status !== 'ok') return 'FAILED';
  const value = row.metric(r);
  return value === undefined ? '—' : row.format(value);
}

/** The table for one scale: rows × (raw, helper, Socket.IO, helper ÷ raw, Socket.IO ÷ helper). */
function tableRows(run: IRunResult, clients: number): string[][] {
  return ROWS.map((row) => [
    row.label,
    cell(run, 'raw', clients, row),
    cell(run, 'helper', clients, row),
    cell(run, 'socketio', clients, row),
    cell(run, 'ignis', clients, row),
    row.noRatio ? '' : fmtRatio(ratio(run, clients, row.workload, row.metric, 'helper', 'raw')),
    row.noRatio ? '' : fmtRatio(ratio(run, clients, row.workload, row.metric, 'socketio', 'helper')),
    row.noRatio ? '' : fmtRatio(ratio(run, clients, row.workload, row.metric, 'ignis', 'helper')),
  ]);
}

const HEADER = [
  '',
  'raw Bun',
  'helper',
  'Socket.IO',
  'Ignis 0.0.7',
  'helper ÷ raw',
  'Socket.IO ÷ helper',
  'Ignis ÷ helper',
];

const ENCRYPTED_HEADER = [
  '',
  'helper, encrypted',
  'helper, unencrypted',
  'helper, spec transformer',
  'Ignis 0.0.7, encrypted',
  'Ignis ÷ helper (encrypted)',
  'helper encrypted ÷ unencrypted',
  'spec transformer: helper ÷ Ignis',
];

const ENCRYPTED_ROWS: Array<Omit<IRow, 'workload'>> = [
  { label: 'server CPU µs / delivered msg', metric: cpuPerDelivery, format: us },
  { label: 'delivered msgs/s', metric: (r) => r.deliveriesPerSec, format: int },
  {
    label: 'kernel share of server CPU',
    metric: (r) => r.serverSystemShare,
    format: (n) => `${Math.round(n * 100)} %`,
    noRatio: true,
  },
];

/** The encrypted comparison: helper (native cipher) and Ignis encrypted, and the helper unencrypted. */
function encryptedRows(run: IRunResult): string[][] {
  const n = run.config.encryptedClients;
  const value = (kind: TServerKind, workload: TWorkload, row: Omit<IRow, 'workload'>) => {
    const r = find(run, kind, n, workload);
    return ok(r) ? row.metric(r) : undefined;
  };
  const show = (kind: TServerKind, workload: TWorkload, row: Omit<IRow, 'workload'>) => {
    const r = find(run, kind, n, workload);
    if (!r) return '—';
    if (r.status !== 'ok') return 'FAILED';
    const v = row.metric(r);
    return v === undefined ? '—' : row.format(v);
  };
  const quotient = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? null : a / b;
  return ENCRYPTED_ROWS.map((row) => {
    const helperOn = value('helper', 'encrypted-64', row);
    return [
      row.label,
      show('helper', 'encrypted-64', row),
      show('helper', 'encrypted-64-baseline', row),
      show('helper-spec', 'encrypted-64', row),
      show('ignis', 'encrypted-64', row),
      row.noRatio ? '' : fmtRatio(quotient(value('ignis', 'encrypted-64', row), helperOn)),
      row.noRatio ? '' : fmtRatio(quotient(helperOn, value('helper', 'encrypted-64-baseline', row))),
      row.noRatio
        ? ''
        : fmtRatio(quotient(value('helper-spec', 'encrypted-64', row), value('ignis', 'encrypted-64', row))),
    ];
  });
}

function consoleTable(rows: string[][], header = HEADER): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    .join('\n');
}

function markdownTable(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function targetValue(t: ITargetCheck, v: ITargetCheck['values'][number]): string {
  if (v.value === null) return 'not measured';
  // Near the limit two decimals can round onto it: show three.
  const close = Math.abs(v.value - t.limit) < 0.005;
  const text =
    t.unit === 'ms' ? `${fixed(v.value, 2)} ms` : close ? `${fixed(v.value, 3)}×` : fmtRatio(v.value);
  return v.holds ? text : `**${text} (miss)**`;
}

function verdict(holds: boolean | null): string {
  return holds === null ? 'not measured' : holds ? 'holds' : '**MISSED**';
}

// ------------------------------------------------------------------ markdown

function describeMiss(run: IRunResult, t: ITargetCheck): string | undefined {
  const misses = t.values.filter((v) => v.holds === false && v.value !== null);
  if (misses.length === 0) return undefined;
  const worst = misses.reduce((a, b) =>
    t.op === '<=' ? (b.value! > a.value! ? b : a) : b.value! < a.value! ? b : a,
  );
  const by =
    t.op === '<='
      ? `${fixed((worst.value! / t.limit - 1) * 100, 1)} % over the limit`
      : `${fixed((1 - worst.value! / t.limit) * 100, 1)} % under the limit`;
  const at = `${int(worst.clients)} clients`;
  const growth = (workload: TWorkload): string => {
    const smallest = run.config.scales[0];
    if (smallest === undefined || smallest === worst.clients) return '';
    const per = (kind: TServerKind, n: number) => {
      const r = find(run, kind, n, workload);
      return ok(r) ? r.cpuUsPerDelivery : undefined;
    };
    const [r0, r1, s0, s1] = [
      per('raw', smallest),
      per('raw', worst.clients),
      per('socketio', smallest),
      per('socketio', worst.clients),
    ];
    if (!r0 || !r1 || !s0 || !s1) return '';
    return `: from ${int(smallest)} to ${int(worst.clients)} clients raw Bun's CPU per delivery grew ${fmtRatio(r1 / r0)}, Socket.IO's ${fmtRatio(s1 / s0)}`;
  };
  const floorBound = (workload: TWorkload): string => {
    const raw = find(run, 'raw', worst.clients, workload);
    const helper = find(run, 'helper', worst.clients, workload);
    const floor = ratio(run, worst.clients, workload, cpuPerDelivery, 'socketio', 'raw');
    if (!ok(raw) || !ok(helper) || floor === null) return 'See the table.';
    return [
      `The floor itself is only ${fmtRatio(floor)} below Socket.IO there (Socket.IO ÷ raw Bun, same run), so no library on top of Bun's \`publish()\` can reach 10× at that scale: the helper is already at the floor (helper ÷ raw ${fmtRatio(ratio(run, worst.clients, workload, cpuPerDelivery, 'helper', 'raw'))}).`,
      `${Math.round((raw.serverSystemShare ?? 0) * 100)} % of raw Bun's server CPU per delivery is kernel time (one loopback socket write per delivery, charged to the sending process), and that cost per write grows with the number of open sockets${growth(workload)}, so the gap narrows as rooms grow.`,
    ].join(' ');
  };
  const pacedReason = (): string => {
    const helper = find(run, 'helper', worst.clients, 'paced')?.latency;
    const raw = find(run, 'raw', worst.clients, 'paced')?.latency;
    if (!helper || !raw) return 'See the table.';
    return [
      `With ${int(helper.samples)} deliveries measured, the p99 is set by the slowest 1 %, so a few stalls of several milliseconds move it: the helper's slowest delivery took ${fixed(helper.maxMs, 2)} ms (median ${fixed(helper.p50Ms, 2)} ms); raw Bun's p99 in the same run was ${fixed(raw.p99Ms, 2)} ms with a slowest delivery of ${fixed(raw.maxMs, 2)} ms.`,
      'Two server instances, Redis and two client processes share two cores, so either server can be descheduled for a while; the helper adds one envelope parse per message on the receiving instance (the payload is forwarded as the received slice, not serialized again), not a queue.',
    ].join(' ');
  };
  const connectReason = (): string => {
    const cpu = ratio(run, worst.clients, 'connect', (r) => r.cpuUsPerConnection, 'helper', 'raw');
    return [
      `The server CPU per connection is ${fmtRatio(cpu)} the floor's at that scale; the rate is wall clock, with the server, Redis and the client processes sharing two cores.`,
      `Where each microsecond above the floor goes is in the profiling notes below (${PROBE}); the four subscriptions are the floor's too ([subscription-cost.md](subscription-cost.md), \`npm run bench:probe\`, measures them in isolation).`,
    ].join(' ');
  };
  // The connect workload runs each variant once per repetition (no spread of its own): another
  // variant's ratio at the same scale, in the same run, shows how far this figure moves.
  const connectNoise = (): string => {
    const metrics = ratio(
      run,
      worst.clients,
      'connect',
      (r) => r.cpuUsPerConnection,
      'helper-metrics',
      'helper',
    );
    return metrics === null
      ? ''
      : ` In the same run and scale, \`metrics: true\` (a few counter and histogram updates per connection) measured ${fmtRatio(metrics)} the helper's CPU per connection.`;
  };
  const reasons: Record<string, string> = {
    'socketio-fanout-4k': floorBound('fanout-4k'),
    'socketio-fanout': floorBound('fanout-64'),
    memory: memoryReason(run, worst.clients),
    'memory-seeds': seedsMemoryReason(run, worst.clients),
    'metrics-fanout': `${spreadText(run, worst.clients, t.id)}With \`metrics: true\` the fan-out path is the same code: the helper keeps its running totals (one increment per message, not per recipient) whether metrics are on or off, and the Prometheus registry only reads them when scraped (nothing scrapes during the run). What metrics add is on the connect and inbound paths: an authentication-duration histogram observation per connection and the byte count of every inbound frame.`,
    'history-send': `${spreadText(run, worst.clients, t.id)}What a history room adds per message, not per recipient: the sending instance runs the publish script in Redis (\`EVAL\`: the next offset, \`XADD\` to the room's stream, \`PUBLISH\`) instead of a bare \`PUBLISH\`, and then delivers the message to its own clients only when Pub/Sub brings it back, parsing the envelope and serializing the data again as the other instance does (the room without history delivers locally at once from the object it has). Redis's own CPU for the script is not in the figure.`,
    'fleet-fanout': `${spreadText(run, worst.clients, t.id)}With \`fleet\` on, the fan-out path is the same code: the registry reads the running totals once per interval (here every second) and writes one MULTI to Redis; nothing is done per message or per recipient.`,
    'fleet-connect': `${spreadText(run, worst.clients, t.id)}With \`fleet\` on, a connection costs the same code: the registry counts nothing per connection (it reads the client registry's sizes once per interval).${connectNoise()}`,
    'connect-rate': connectReason(),
    'paced-p99': pacedReason(),
  };
  const sides = CPU_TARGET_WORKLOAD[t.id];
  const spread = sides ? repSpread(run, worst.clients, sides) : null;
  const reason =
    reasons[t.id] ??
    (spread
      ? `The ${spread.n} alternating repetitions at that scale gave ratios from ${fmtRatio(spread.min)} to ${fmtRatio(spread.max)}: the difference is within what the shared machine varies between repetitions. See the profiling notes below.`
      : 'See the profiling notes below.');
  return `- **${t.label}**: worst ${targetValue(t, worst).replaceAll('**', '')} at ${at} (${by}; limit ${t.op} ${t.limit}${t.unit === 'ms' ? ' ms' : '×'}). ${reason}`;
}

/** The CPU targets whose two sides alternate repetition by repetition: workload, over, under. */
const CPU_TARGET_WORKLOAD: Record<string, [TWorkload, TServerKind, TServerKind]> = {
  'fanout-64-cpu': ['fanout-64', 'helper', 'raw'],
  'fanout-4k-cpu': ['fanout-4k', 'helper', 'raw'],
  'exclude-cpu': ['exclude-64', 'helper', 'raw'],
  'cross-cpu': ['cross-64', 'helper', 'raw'],
  'metrics-fanout': ['fanout-64', 'helper-metrics', 'helper'],
  'fleet-fanout': ['fanout-64', 'helper-fleet', 'helper'],
  'fleet-connect': ['connect', 'helper-fleet', 'helper'],
  'history-send': ['cross-64', 'helper-history', 'helper'],
};

/** over ÷ under for each repetition (they alternate, so repetition i of each ran back to back). */
function repSpread(
  run: IRunResult,
  clients: number,
  [workload, over, under]: [TWorkload, TServerKind, TServerKind],
): { min: number; max: number; n: number } | null {
  const a = find(run, over, clients, workload)?.cpuUsPerDeliveryByRep;
  const b = find(run, under, clients, workload)?.cpuUsPerDeliveryByRep;
  if (!a || !b || a.length !== b.length || a.length < 2) return null;
  const ratios = a.map((x, i) => x / b[i]!);
  return { min: Math.min(...ratios), max: Math.max(...ratios), n: ratios.length };
}

function memoryReason(run: IRunResult, clients: number): string {
  const raw = find(run, 'raw', clients, 'connect');
  const helper = find(run, 'helper', clients, 'connect');
  if (!ok(raw) || !ok(helper)) return '';
  const rawB = raw.memoryPerConnectionBytes!;
  const helperB = helper.memoryPerConnectionBytes!;
  const heapExtra = (helper.heapPerConnectionBytes ?? 0) - (raw.heapPerConnectionBytes ?? 0);
  const nativeExtra = helperB - rawB - heapExtra;
  return [
    `The floor keeps ${int(rawB)} bytes per connection (Bun's socket and its JavaScript wrapper); the helper keeps ${int(helperB)}: ${int(heapExtra)} more on the JavaScript heap (the client record, its entries in the client and user maps, the user id) and ${int(nativeExtra)} more outside it.`,
    "Most of what lies outside the heap is Bun's native pub/sub: four topic subscriptions per client against the floor's one (the client id, the broadcast topic and the two default rooms), one of them a topic of its own per client; the documents promise that every client is subscribed to its own id topic on connect, so it stays. [subscription-cost.md](subscription-cost.md) (`npm run bench:probe`) measures what each kind of subscription costs on its own; the four-topic floor (next target) pays the same subscriptions.",
    `The 1.25× limit leaves ${int(rawB * 0.25)} bytes per connection for all of that; against the floor with the same four subscriptions, see the next target and the profiling notes.`,
  ].join(' ');
}

/** The repetition spread of an alternating CPU target, as a sentence, or nothing. */
function spreadText(run: IRunResult, clients: number, id: string): string {
  const sides = CPU_TARGET_WORKLOAD[id];
  const spread = sides ? repSpread(run, clients, sides) : null;
  return spread
    ? `The ${spread.n} alternating repetitions at that scale gave ratios from ${fmtRatio(spread.min)} to ${fmtRatio(spread.max)}. `
    : '';
}

/** The helper against the second floor: raw Bun with the same four subscriptions per socket. */
function seedsMemoryReason(run: IRunResult, clients: number): string {
  const raw = find(run, 'raw', clients, 'connect');
  const seeds = find(run, 'raw-seeds', clients, 'connect');
  const helper = find(run, 'helper', clients, 'connect');
  if (!ok(raw) || !ok(seeds) || !ok(helper)) return '';
  const seedsB = seeds.memoryPerConnectionBytes!;
  const helperB = helper.memoryPerConnectionBytes!;
  const heapExtra = (helper.heapPerConnectionBytes ?? 0) - (seeds.heapPerConnectionBytes ?? 0);
  return [
    `Raw Bun keeps ${int(raw.memoryPerConnectionBytes!)} bytes per connection with one topic and ${int(seedsB)} with the four the seeds promise (${int(seedsB - raw.memoryPerConnectionBytes!)} for the three extra subscriptions, one of them a topic of its own per socket);`,
    `the helper keeps ${int(helperB)}, ${int(helperB - seedsB)} more than that floor: ${int(heapExtra)} on the JavaScript heap (the client record, its entries in the client and user maps, the user id) and ${int(helperB - seedsB - heapExtra)} outside it.`,
    `The 1.25× limit leaves ${int(seedsB * 0.25)} bytes. Where each byte above this floor goes is in the profiling notes below (${PROBE}). Resident-set growth over one connect round is noisy on a shared machine (compare the scales).`,
  ].join(' ');
}

/**
 * What the connection probes measured (issue 14 item 2), stated with the commands that reproduce
 * them; the figures are from 5,000 clients on this 2-core machine, median of 3 alternating rounds.
 */
const PROBE = '`bun run bench/probes/connection-cost.ts --clients 5000 --rounds 3`';
const JS_PROBE = '`bun run bench/probes/connect-js-cost.ts`';
const MEMORY_FACTS = `Where each byte above the four-topic floor goes (${PROBE}: the server's resident size, the engine's heap statistics, mimalloc's bytes in use and objects by type, after full GCs): per connection the helper has one more object (its client record, about 160 bytes with every field declared inline) and one more string (the user id) than the floor, and no \`Set\`; its JavaScript heap grows about 400 bytes more (the record, its entries in the client map and the user map at about 66 bytes each, the user id with its 32-byte native character block); the Bun socket, its \`data\` object and the four subscriptions are the same objects and native blocks as the floor's. mimalloc holds the heap's 16 KB blocks too, and its bytes in use grow about 550-650 bytes more than the floor's: the heap's blocks plus the user id's characters. Resident size grew 330-380 bytes more than the floor's in the probe (1.11-1.12×): the heap's blocks are the whole excess; what the allocator keeps of the garbage of each connect is the rest of the variation between runs.`;
const CONNECT_CPU_FACTS = `Where each microsecond above the floor goes (${PROBE}, which also reads each thread's CPU time, 10 ms ticks, so ±2 µs per connection): the four-topic floor spent about 24 µs of server CPU per connection, the helper about 34 µs: about 4 µs on the JavaScript thread and about 4 µs on the engine's JIT compiler thread (the other 2 µs are within the ticks' resolution), still optimizing the helper's connect path (far more code than the floor's few lines). That is not paid once by the warm-up: the engine's top tier (FTL) compiles \`admit\`, \`authenticate\` and \`open\` only after several thousand connections (\`BUN_JSC_reportCompileTimes=1\` on ${JS_PROBE} with \`--rounds 12\`: about 220 ms of compiling over 60,000 connections, \`admit\` about 15 ms each time), so at 10,000 clients it falls inside the measured connections and at 1,000 mostly does not. It used to compile \`authenticate\`, \`open\` and the deadline queue's \`add\` again and again (\`BUN_JSC_verboseOSR=1\`: "Entered reoptimize"), FTL compiles still arriving after 50,000 connections: the queue, emptied after nearly every authentication, was given a fresh \`[]\`, on whose first push the optimized \`add\` (inlined into both) left its compiled code. It now empties its array in place, and the compiles end by about 35,000 connections (only \`admit\` is compiled twice). Without sockets (${JS_PROBE}: the helper on fake sockets, only its JavaScript) open + authenticate costs about 3 µs (5-6 µs before the per-connection debug lines were skipped when \`isLevelEnabled('debug')\` says no, and the \`connected\` frame written as text with its ISO time formatted once per second): the record, the client and user index entries, two deadline-queue entries, decoding and checking the \`authenticate\` frame and \`authenticateFn\`'s answer (no promise when it answers synchronously), the \`connected\` frame and \`clientConnectedFn\`. The rest of the JavaScript thread's excess is the \`open\` callback (the floor has none) and collecting the extra garbage; the native work (upgrade, four subscriptions, the answer's write) is the floor's.`;

/** What `bench/probes/router-cost.ts` measured (issue 19 point 2): the server router costs nothing while unused. */
const ROUTER_NOTES = `## Server router

The router (\`on()\` / \`use()\`, [api.md](api.md#router-on-and-use)) is reached only once something is registered: until then an inbound frame reads one more field than before and takes the path it took before, line for line. \`bun run bench/probes/router-cost.ts --before /tmp/roomcast-before/src --sets 11\` (after \`git archive cd4eafb src | tar -x -C /tmp/roomcast-before\`, the commit before the router) measures the helper's JavaScript per inbound request on fake sockets (1,000 authenticated clients, 100,000 requests per round, each decoded, routed, answered by a synchronous handler and serialized), each kind alone in a child process, the kinds in turn, 11 times; CPU µs per request, on this 2-core machine shared with other work (load average about 6), so single sets vary by half:

| kind | median of 11 sets | fastest set | median of the per-set ratios to *before* |
| --- | --- | --- | --- |
| *before*: the tree before the router, \`messageHandler\` answers | 1.378 µs | 1.139 µs | 1 |
| *off*: this tree, nothing registered, \`messageHandler\` answers | 1.249 µs | 1.019 µs | 0.960× |
| *router*: one no-op \`use()\`, \`on()\` answers | 1.901 µs | 1.188 µs | 1.248× |

*Off* is within the noise of *before* (every statistic puts it at or below it): an application that registers nothing pays nothing measurable. With the router on, a request costs about a quarter more in this probe (the context object and its \`state\`, the middleware loop), a fraction of a microsecond.`;

/** What the CPU profiles (`--profile`) and the per-connection memory break-down show. */
const PROFILE_NOTES = `### Where the helper spends more than the floor

- **Room fan-out and broadcast**: \`sendToRoom\` / \`broadcast\` serialize the message once and make the one \`server.publish()\` call the floor makes; in the server's CPU profile nearly all the time is Bun's native publish and socket writes. What the helper adds (frame building, one check for encrypted clients) is paid per message, not per recipient, so it fades as rooms grow.
- **Excluding the sender**: with one excluded client the helper publishes through that client's socket, as the floor does; it adds a registry lookup and an \`isSubscribed\` check per message.
- **Cross-instance \`send()\`**: the receiving instance parses and validates the Redis envelope and forwards the payload it received, sliced from the envelope, as the body of its local frame (no second serialization where no exclusion or transformer needs the object); the sending instance skips its own envelopes by their first bytes, without parsing them. Per message, not per recipient.
- **Plain room fan-out against an independent harness** (1.08-1.12× raw Bun there, 1.01-1.04× here): \`bun run bench/probes/fanout-pairs.ts\` rebuilds that harness (2,000 clients in child processes, 2,000 room messages of 64 B, raw Bun and the helper interleaved, median of 3 rounds) with several floors; its findings are in bench/README.md. The 21 bytes of the documented frame over a bare payload, the helper's four topics per socket and its default heartbeat made no measurable difference there, and the helper's own room fan-out came out at the ratio of this table. What reaches the harness's figure is \`send()\` to the room, which also publishes to Redis for the other instances (and, in \`'pattern'\` mode, receives its own envelope back and skips it): a harness comparing \`send()\` with a raw Bun that never touches Redis measures that cross-instance leg, which this benchmark compares with raw Bun's own Redis relay instead (the cross-instance row).
- **Connecting and authenticating**: ${CONNECT_CPU_FACTS}
- **Memory per connection**: ${MEMORY_FACTS}

Changes made after profiling (in \`src/server/\`):

1. The client-id room has no member \`Set\`: the client's own id room is answered from the client map (\`ClientRegistry.ownRoomMember\`); the socket keeps its id topic, which the documents promise.
2. The user index stores the client itself while a user has one connection and switches to a \`Set\` at the second.
3. Authentication deadlines are entries in two FIFO queues with one timer each (\`deadline-queue.ts\`) instead of a \`setTimeout\` per connection, and \`authenticateFn\` is no longer raced against a second timer (the queue's deadline already closes a hung authentication with 4001).
4. One \`ClientRecord\` per connection (\`client-record.ts\`) with every field it ever gets declared (no shape changes when the inbound limits or the user id are set later), holding its own pending deadline (no deadline map). While a client is only in its own id room and the default rooms it keeps no \`Set\` of rooms (\`client.rooms\` builds it the first time anything reads it) and no entries in the default rooms' member sets: the registry counts such clients in every default room. Together about 390 bytes of heap per connection less (${PROBE}: from about 780 to about 400 above the floor).
5. The \`connected\` frame is written as text with its ISO time formatted once per second (milliseconds appended), the per-connection debug lines are built only when the logger says debug is on (\`isLevelEnabled\`), the client's log fields are built without object spreads, and prom-client is loaded only with \`metrics\` on.`;

function connectReps(run: IRunResult): number {
  return (
    run.results.find((r) => r.workload === 'connect' && r.kind !== 'socketio' && r.status === 'ok')
      ?.repetitions ?? 1
  );
}

/** One figure of one kind at one scale, formatted, or why there is none. */
function figure(
  run: IRunResult,
  kind: TServerKind,
  n: number,
  workload: TWorkload,
  metric: TMetric,
  format: (n: number) => string,
): string {
  const r = find(run, kind, n, workload);
  if (!r) return '—';
  if (r.status !== 'ok') return 'FAILED';
  const v = metric(r);
  return v === undefined ? '—' : format(v);
}

interface IVariantRow {
  label: string;
  cell: (run: IRunResult, clients: number) => string;
}

const value =
  (kind: TServerKind, workload: TWorkload, metric: TMetric, format: (n: number) => string) =>
  (run: IRunResult, n: number) =>
    figure(run, kind, n, workload, metric, format);
const quotientOf =
  (workload: TWorkload, metric: TMetric, over: TServerKind, under: TServerKind) =>
  (run: IRunResult, n: number) =>
    fmtRatio(ratio(run, n, workload, metric, over, under));
const cpuPerConnection: TMetric = (r) => r.cpuUsPerConnection;
/** One instance's share of a cross-instance workload's CPU, per delivered message. */
const onInstance =
  (i: number): TMetric =>
  (r) => {
    const us = r.serverCpuUsByInstance?.[i];
    return us === undefined || !r.deliveries ? undefined : us / r.deliveries;
  };
const redisPerDelivery: TMetric = (r) =>
  r.redisCpuUs === undefined || !r.deliveries ? undefined : r.redisCpuUs / r.deliveries;
const deliveriesPerSec: TMetric = (r) => r.deliveriesPerSec;

/** The variants of the floor and the helper that run beside them (issues 10, 13 and 14). */
const VARIANT_ROWS: IVariantRow[] = [
  {
    label: 'memory per connection (bytes RSS): raw Bun, one topic',
    cell: value('raw', 'connect', memory, int),
  },
  {
    label: 'memory per connection (bytes RSS): raw Bun, the four seed topics',
    cell: value('raw-seeds', 'connect', memory, int),
  },
  { label: 'memory per connection (bytes RSS): helper', cell: value('helper', 'connect', memory, int) },
  { label: '— helper ÷ four-topic floor', cell: quotientOf('connect', memory, 'helper', 'raw-seeds') },
  {
    label: 'connect + auth rate (connections/s): raw Bun, four topics',
    cell: value('raw-seeds', 'connect', connectRate, int),
  },
  { label: '— helper ÷ four-topic floor', cell: quotientOf('connect', connectRate, 'helper', 'raw-seeds') },
  {
    label: 'room fan-out 64 B, CPU µs / delivered msg: helper, metrics off',
    cell: value('helper', 'fanout-64', cpuPerDelivery, us),
  },
  {
    label: 'room fan-out 64 B, CPU µs / delivered msg: helper, `metrics: true`',
    cell: value('helper-metrics', 'fanout-64', cpuPerDelivery, us),
  },
  { label: '— metrics on ÷ off', cell: quotientOf('fanout-64', cpuPerDelivery, 'helper-metrics', 'helper') },
  {
    label: 'connect + auth rate (connections/s): helper, `metrics: true`',
    cell: value('helper-metrics', 'connect', connectRate, int),
  },
  {
    label: '— metrics on ÷ off (rate)',
    cell: quotientOf('connect', connectRate, 'helper-metrics', 'helper'),
  },
  {
    label: '— metrics on ÷ off (server CPU per connection)',
    cell: quotientOf('connect', cpuPerConnection, 'helper-metrics', 'helper'),
  },
  {
    label: 'room fan-out 64 B, CPU µs / delivered msg: helper, `fleet` registry on (every second)',
    cell: value('helper-fleet', 'fanout-64', cpuPerDelivery, us),
  },
  { label: '— fleet on ÷ off', cell: quotientOf('fanout-64', cpuPerDelivery, 'helper-fleet', 'helper') },
  {
    label: '— fleet on ÷ off (connect rate)',
    cell: quotientOf('connect', connectRate, 'helper-fleet', 'helper'),
  },
  {
    label: '— fleet on ÷ off (server CPU per connection)',
    cell: quotientOf('connect', cpuPerConnection, 'helper-fleet', 'helper'),
  },
  {
    label: 'cross-instance send() 64 B, CPU µs / delivered msg (A+B): room without history',
    cell: value('helper', 'cross-64', cpuPerDelivery, us),
  },
  {
    label: 'cross-instance send() 64 B, CPU µs / delivered msg (A+B): history room',
    cell: value('helper-history', 'cross-64', cpuPerDelivery, us),
  },
  { label: '— history ÷ without', cell: quotientOf('cross-64', cpuPerDelivery, 'helper-history', 'helper') },
  {
    label: '— of which the sending instance A, without / with history',
    cell: (run, n) =>
      `${value('helper', 'cross-64', onInstance(0), us)(run, n)} / ${value('helper-history', 'cross-64', onInstance(0), us)(run, n)}`,
  },
  {
    label: '— of which instance B, without / with history',
    cell: (run, n) =>
      `${value('helper', 'cross-64', onInstance(1), us)(run, n)} / ${value('helper-history', 'cross-64', onInstance(1), us)(run, n)}`,
  },
  {
    label: "Redis's own CPU µs / delivered msg (not in the figures above), without / with history",
    cell: (run, n) =>
      `${value('helper', 'cross-64', redisPerDelivery, us)(run, n)} / ${value('helper-history', 'cross-64', redisPerDelivery, us)(run, n)}`,
  },
  {
    label: 'cross-instance send() 64 B, delivered msgs/s: history room',
    cell: value('helper-history', 'cross-64', deliveriesPerSec, int),
  },
];

function variantsSection(run: IRunResult): string[] {
  if (
    !run.results.some((r) =>
      ['raw-seeds', 'helper-metrics', 'helper-fleet', 'helper-history'].includes(r.kind),
    )
  )
    return [];
  return [
    '## The second floor, metrics, the fleet registry and history (same run)',
    '',
    "Variants that take their turn beside raw Bun and the helper in the same repetitions: **raw Bun, four topics** is the floor with every socket also subscribed to its own id and the two default rooms (`ws-default`, `ws-notification`), the four subscriptions the seeds promise; **`metrics: true`** is the helper with its Prometheus registry on (nothing scrapes it during the run); **`fleet` registry on** is the helper announcing itself in the fleet registry every second (five times the default rate: one MULTI to Redis per second, nothing per message or connection); **history room** is the helper with `historyFn` keeping the benchmark room's history (1,000 publications, ten minutes) in Redis, so every `send()` gets its position from the publish script and every instance, the sender included, delivers it when Pub/Sub brings it back. Redis's own CPU (`INFO cpu`) is in no server figure; one row shows it per delivered message for the cross-instance `send()`.",
    '',
    markdownTable(
      ['', ...run.config.scales.map((n) => `${int(n)} clients`)],
      VARIANT_ROWS.map((row) => [row.label, ...run.config.scales.map((n) => row.cell(run, n))]),
    ),
  ];
}

function recoverySection(run: IRunResult): string[] {
  const n = run.config.recoveryClients ?? 0;
  if (n === 0) return [];
  const kinds: TServerKind[] = ['helper-history', 'socketio-csr'];
  const show = (kind: TServerKind, metric: TMetric, format: (v: number) => string) =>
    figure(run, kind, n, 'recover-100', metric, format);
  const baseline = (metric: TMetric, format: (v: number) => string) =>
    figure(run, 'helper', n, 'reconnect', metric, format);
  const rows: Array<[string, TMetric, (v: number) => string]> = [
    ['time until every client has recovered (ms)', (r) => r.wallMs, int],
    [
      'server CPU over that time (ms)',
      (r) => (r.serverCpuUs === undefined ? undefined : r.serverCpuUs / 1000),
      int,
    ],
    ['server CPU per recovered message (µs)', cpuPerDelivery, us],
  ];
  const quotient = (metric: TMetric) => {
    const a = find(run, 'socketio-csr', n, 'recover-100');
    const b = find(run, 'helper-history', n, 'recover-100');
    if (!ok(a) || !ok(b)) return '—';
    const x = metric(a);
    const y = metric(b);
    return x === undefined || y === undefined || y === 0 ? '—' : fmtRatio(x / y);
  };
  return [
    `## Recovery: ${int(n)} clients reconnecting at once, each recovering 100 missed messages`,
    '',
    `${int(n)} clients join one room and all receive one message (so each has a position), then all drop; 100 messages of 64 bytes are sent to the room; then all ${int(n)} reconnect at the same moment and ask to recover. Measured from the first reconnect until every client has its answer and all 100 messages, each exactly once and in order (checked by sequence number; a client not told it recovered fails the run), and the server's CPU over that time. The clients run in the orchestrator process.`,
    '',
    '- **Baseline**: the same clients on the helper without history reconnecting at once and rejoining the room (authenticate and `join` only, nothing to recover): what reconnecting itself costs.',
    "- **roomcast** (`helper, history room`): Redis mode, `historyFn` on the room; each client authenticates again and sends `join` with `since: { room: { offset, epoch } }`; the answer carries `recovered: { room: true }` and the 100 publications are read from the room's Redis stream.",
    "- **Socket.IO 4** (`connectionStateRecovery: {}`, defaults kept, with its default in-memory adapter on one instance: the Pub/Sub Redis adapter of the other Socket.IO figures does not support connection state recovery): each client sends the session id and last offset it was given in its CONNECT packet's auth (`{ pid, offset }`, as `socket.io-client` does); the server answers with the same `pid` (recovered) and replays the packets it kept in its own memory. By default a recovered Socket.IO session skips the middlewares, so the `auth` check does not run again.",
    '',
    markdownTable(
      ['', ...kinds.map((k) => KIND_LABEL[k]), 'Socket.IO ÷ helper', 'baseline: helper, plain reconnect'],
      rows.map(([label, metric, format]) => [
        label,
        ...kinds.map((k) => show(k, metric, format)),
        quotient(metric),
        baseline(metric, format),
      ]),
    ),
  ];
}

function encryptedSection(run: IRunResult): string[] {
  const targets = run.targets.filter(isEncryptedTarget);
  return [
    `## Encrypted fan-out: roomcast's helper and Ignis 0.0.7, ${int(run.config.encryptedClients)} clients`,
    '',
    markdownTable(ENCRYPTED_HEADER, encryptedRows(run)),
    '',
    markdownTable(
      ['target', 'limit', 'measured', 'verdict'],
      targets.map((t) => [
        t.label,
        `${t.op} ${t.limit}×`,
        t.values.map((v) => targetValue(t, v)).join(' / ') || 'not measured',
        verdict(t.holds),
      ]),
    ),
    '',
    SPEC_TRANSFORMER_NOTES,
  ];
}

/** What the probe and the before/after runs of issue 20 showed about the specification's transformer. */
const SPEC_TRANSFORMER_NOTES = `### Where the specification's transformer spends its time

The *spec transformer* column is the helper with the specification's own code: a WebCrypto \`CryptoKey\` per client and an \`async\` transformer returning \`{ event: 'encrypted', data: await ecdh.encrypt({ message: JSON.stringify({ event, data }), secret }) }\` (\`bench/servers/helper.ts\`, \`BENCH_SPEC_CIPHER=1\`), against Ignis with its own transformer (which serializes once per message, where the specification's serializes once per client). \`bun run bench/probes/async-transformer-cost.ts --sets 3 --before DIR\` takes it apart without the network (1,000 clients on fake sockets, the same rounds of 10 room messages, each layer in a process of its own, medians of 3 sets, CPU of every thread per delivered message), on the 2-core development machine shared with other work:

| layer | µs per delivered message | added by the layer |
| --- | --- | --- |
| \`crypto.subtle.encrypt\` alone (a fresh IV, the message's bytes, 10 in flight per message) | 10.1 | 10.1 |
| roomcast's \`ECDH.encrypt\` around it (two base64 strings, the result object) | 12.8 | 2.7 |
| the specification's transformer around that (\`JSON.stringify\` per client, the \`async\` function) | 12.4 | within the noise |
| the floor: answers written as they settle, unordered, one window of 10 per message (what Ignis does) | 16.1 | 3.7 |
| the helper, in order per client (this tree) | 16.1 | 1.00× the floor |
| the helper before issue 20 (\`git archive 89ee9c0 src\`, \`--before\`) | 29.8 | 1.85× the floor |

Before, each client and message cost a chain of promises of its own (a window task, a \`Promise.all\` of the client's previous send and a window slot, several more promises and closures), about 14 µs here. Now each encrypted client has a line of messages (\`src/server/transform-lines.ts\`): its calls start in send order, several may be in flight (at most \`encryptedBatchLimit\` per fan-out and per client), and what settled is written from the head of the line once per event-loop turn; no promise per message but the transformer's own. What the probe cannot show is the socket write, the rest of the benchmark's figure: before, one system call per frame; now the answers to one client that settle in the same turn go out in one corked write. In the runs below the kernel's share of the server's CPU went from 44–48 % to 36–39 % (from 28–45 µs of kernel time per delivered message to 8–10): fewer writes, and, presumably, fewer wake-ups of WebCrypto's worker thread and of the event loop now that a client's calls no longer wait for each other. \`ECDH.encrypt\` also encodes base64 with the runtime's own encoder now (\`Uint8Array.prototype.toBase64\`, where there is one) instead of building a string for \`btoa\`.

The same comparison with real sockets, \`bun run bench/run.ts --encrypted-only\` run three times in this tree and three times in the tree before the change (\`git archive bbb70b7\`, the benchmark with this column and the old delivery), interleaved: spec transformer 74.0 / 93.6 / 64.8 µs against Ignis's 53.3 / 67.8 / 53.3 before (1.39× / 1.38× / 1.21×), 23.4 / 20.8 / 25.2 µs against Ignis's 51.1 / 45.8 / 49.3 after (0.46× / 0.46× / 0.51×). Order per client is checked as everywhere (four sockets per client process decrypt and check the sequence inside); Ignis's reordered frames are counted, not failed.`;

function markdown(run: IRunResult): string {
  const m = run.machine;
  const status =
    run.status === 'ok'
      ? 'Every client received every expected message in every workload (checked by sequence number).'
      : `**This run FAILED**: ${run.failures.length} workload(s) did not deliver every expected message, or did not run. Their cells read FAILED and carry no figures.`;
  const lines: string[] = [];
  lines.push('# Benchmarks');
  lines.push('');
  lines.push(
    "Generated by `npm run bench` from `docs/benchmarks.json` (the same run); nothing here is typed in by hand. The servers under test, measured in the same run on the same machine: **raw Bun** (the floor: `Bun.serve`, `ws.subscribe`, `server.publish`, a minimal `authenticate` message and the smallest Redis relay), **roomcast's `WebSocketServerHelper`** with its defaults (except a 10-minute `heartbeatTimeout`: the load clients send no heartbeats), and **Socket.IO 4** on Node with the Redis adapter (`transports: ['websocket']`).",
  );
  if (run.results.some((r) => r.kind === 'ignis' && r.workload !== 'encrypted-64')) {
    lines.push('');
    lines.push(
      "The per-scale tables also have a column for **upstream Ignis 0.0.7** (`@venizia/ignis-helpers`, its `WebSocketServerHelper` on Bun with its defaults and the same Redis, the project this one replaces; its `info` and `debug` logging silenced, as the helper's is here, since it logs every connection and disconnection) on connect + authenticate, memory, plain room fan-out and fan-out excluding the sender (`sendToRoom` with `exclude`); its other cells read —.",
    );
  }
  if (run.config.encryptedClients > 0) {
    lines.push('');
    lines.push(
      'The encrypted fan-out section compares the helper with **upstream Ignis 0.0.7** (`@venizia/ignis-helpers`, its `WebSocketServerHelper` on Bun, the same Redis), each encrypting with its own `ECDH` in its outbound transformer.',
    );
  }
  lines.push('');
  lines.push(status);
  lines.push('');
  // What failed, as the run reported it: the reader must not have to find the console log.
  for (const failure of run.failures) lines.push(`- FAILED: ${failure.replaceAll('|', '\\|')}`);
  if (run.failures.length > 0) lines.push('');
  lines.push('![Server CPU per delivered message and the targets](benchmarks.svg)');
  lines.push('');
  lines.push('## Machine and command');
  lines.push('');
  lines.push(`- ${m.nproc} cores, ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.os}`);
  lines.push(`- Bun ${m.bun}, Node ${m.node}, redis-server ${m.redis}; open-file limit ${int(m.fileLimit)}`);
  lines.push(
    `- ${Object.entries(m.packages)
      .map(([name, version]) => `${name} ${version}`)
      .join(
        ', ',
      )} (Socket.IO with its defaults: no \`bufferutil\` / \`utf-8-validate\` add-ons, no compression)`,
  );
  lines.push(
    `- load average (1, 5, 15 min) at the start ${m.loadAverageAtStart.join(', ')}, at the end ${(m.loadAverageAtEnd ?? []).join(', ')} (the machine is shared)`,
  );
  lines.push(
    `- \`${run.command}\` — started ${run.startedAt}, took ${fixed(run.durationMs / 1000, 0)} s (dependency install excluded)`,
  );
  lines.push(
    `- The ${m.nproc} cores also run the benchmark's own load clients and Redis, and the 1-minute load average was ${m.loadAverageAtStart[0]} when the run started (work that ran just before it or beside it): single figures are noisy; ratios of kinds that alternate within each repetition are the robust ones. Re-run with the command above to check them.`,
  );
  if (run.config.skippedScales.length > 0) {
    for (const s of run.config.skippedScales) lines.push(`- ${int(s.clients)} clients not run: ${s.reason}`);
  }
  lines.push('');
  lines.push('## Targets');
  lines.push('');
  lines.push(
    markdownTable(
      ['target', 'limit', ...run.config.scales.map((n) => `${int(n)} clients`), 'verdict'],
      run.targets
        .filter((t) => !isEncryptedTarget(t))
        .map((t) => [
          t.label,
          `${t.op} ${t.limit}${t.unit === 'ms' ? ' ms' : '×'}`,
          ...t.values.map((v) => {
            const sides = CPU_TARGET_WORKLOAD[t.id];
            const spread = sides && v.value !== null ? repSpread(run, v.clients, sides) : null;
            return spread
              ? `${targetValue(t, v)}<br><sub>reps ${fmtRatio(spread.min)}–${fmtRatio(spread.max)}</sub>`
              : targetValue(t, v);
          }),
          verdict(t.holds),
        ]),
    ),
  );
  lines.push('');
  const misses = run.targets.map((t) => describeMiss(run, t)).filter((s): s is string => s !== undefined);
  if (misses.length > 0) {
    lines.push('### Missed targets');
    lines.push('');
    lines.push(...misses);
    lines.push('');
  }
  lines.push(PROFILE_NOTES);
  lines.push('');
  if (run.config.encryptedClients > 0) lines.push(...encryptedSection(run), '');
  if (run.roomKeys) {
    // A subsection of the encrypted one (with a heading of its own when that did not run).
    if (run.config.encryptedClients === 0) lines.push('## Encrypted fan-out', '');
    lines.push(...roomKeysSection(run.roomKeys), '');
  }
  const variants = variantsSection(run);
  if (variants.length > 0) lines.push(...variants, '');
  const recovery = recoverySection(run);
  if (recovery.length > 0) lines.push(...recovery, '');
  for (const section of [capacitySection(run.capacity), scalingSection(run.scaling)]) {
    if (section.length > 0) lines.push(...section, '');
  }
  if (run.clusterApi) lines.push(...clusterApiSection(run.clusterApi), '');
  if (run.sendThroughput) lines.push(...sendThroughputSection(run.sendThroughput), '');
  for (const clients of run.config.scales) {
    lines.push(`## ${int(clients)} authenticated clients`);
    lines.push('');
    lines.push(markdownTable(HEADER, tableRows(run, clients)));
    lines.push('');
  }
  lines.push(ROUTER_NOTES, '');
  lines.push('## How it is measured');
  lines.push('');
  lines.push(
    [
      `- Every server under test runs in its own process, with a second instance beside it sharing one \`redis-server\` that the run starts on a free port. Clients run in ${run.config.clientProcesses} other Bun processes per server kind (Bun's own WebSocket client), all on 127.0.0.1.`,
      '- **Server CPU** is `process.cpuUsage()` (user + system) read inside the server process through an HTTP control endpoint before and after each workload; for cross-instance workloads the two instances are added up. Redis and the clients are not counted. It is divided by the deliveries: messages × clients that had to receive each.',
      '- **Every delivery is checked**: each message carries a sequence number that every receiving socket checks (a prefix test and a digit loop, no `JSON.parse`); a gap, repeat, reorder, stray frame (the excluded sender receiving), malformed frame or closed socket makes the workload FAILED. Encrypted frames are counted, and four sockets per client process decrypt theirs and check the order inside.',
      `- **Flow control**: messages go out in rounds (a few thousand to fifty thousand deliveries each); the next round starts when every socket has received the last one, so nothing piles up in socket buffers and no message is dropped by a backpressure limit. Delivered messages per second is end to end, round trips of the control channel included. Raw Bun, the helper, their variants and Ignis take turns: each throughput workload is run ${run.config.repetitions} times, alternating between them, and the totals are used, so load from other processes on the shared machine affects them alike. Socket.IO runs once per workload, with fewer messages (each workload is bounded in time).`,
      "- **Memory** is the growth of the server's resident set size (after three full garbage collections) from before to after connecting and authenticating every client, divided by the clients. A warm-up (1,000 connections, 50 of them joining the room and receiving 200 messages, then all closed) runs first so compiling the code paths is not counted.",
      `- **Connect + authenticate rate**: both client processes open their half of the connections, 64 at a time each, and each waits for the authentication answer (\`connected\`, or Socket.IO's CONNECT acknowledgement carrying the \`auth\` payload checked by a middleware). For every kind but Socket.IO the rate and the CPU per connection are totals over ${connectReps(run)} rounds in which they take turns to close and reconnect every client; memory comes from the first round.`,
      '- **Socket.IO client check**: the load generator speaks Engine.IO v4 / Socket.IO v5 itself (one client object per connection would make the clients the bottleneck); in every run one official `socket.io-client` joins the warm-up and must receive the same 200 messages in order, or the run fails.',
      `- **Rooms**: clients join with a \`join\` request the server validates (\`validateRoomFn\` for the helper, an acknowledged \`join\` event for Socket.IO). Single-instance workloads use each server's local-only API (\`sendToRoom\`, \`broadcast\`, \`server.publish\`, \`io.local\`); cross-instance workloads use the one that also reaches the other instances (\`helper.send()\`, \`io.to(room).emit()\`, a Redis \`PUBLISH\` beside \`server.publish\` for raw Bun). Excluding the sender is \`exclude: [id]\` for the helper, \`ws.publish()\` from the sender's socket for raw Bun and \`socket.to(room)\` for Socket.IO.`,
      `- **Paced latency**: instance A sends one 64-byte message every ${run.config.pacedIntervalMs} ms (${run.config.pacedMessages} in all) with \`send()\` to a room of ${run.config.latencyRoomMembers} clients, half on each instance, while every other client stays connected. Latency is the receive time minus the send time stamped into the message (both \`performance.timeOrigin + performance.now()\`, same machine), for every delivery, in 10 µs buckets.`,
      `- **Encrypted fan-out** (roomcast's helper against upstream Ignis 0.0.7, at ${int(run.config.encryptedClients)} clients): every client authenticates with a per-client AES-256 key (sent in the \`authenticate\` data, standing in for the ECDH exchange, the same for both), \`clientConnectedFn\` calls \`enableClientEncryption\`, and each library's \`outboundTransformer\` encrypts with its own \`ECDH\`: Ignis's \`ECDH.encrypt\` (WebCrypto, awaited) and roomcast's \`ECDH.encryptSync\` (the raw key on the runtime's native AES-256-GCM, answered synchronously). Both serialize the message once and encrypt it per client with a fresh IV. The *spec transformer* kind (\`helper-spec\`) runs the helper with the specification's own transformer instead: a WebCrypto \`CryptoKey\` per client, \`JSON.stringify({ event, data })\` per client and an awaited \`ECDH.encrypt\`. ${run.config.encryptedMessages} room messages per repetition, repetitions alternating between the kinds; then the helper's same fan-out with encryption off. Four sockets per client process decrypt what they receive and check the order inside.`,
      '- **Reading the CPU figures**: on loopback every delivery is a socket write whose kernel cost lands in the server process (the kernel share rows), and that cost per write grows with the number of open sockets, so CPU per delivered message rises with the client count for every server. The ratios compare servers at the same client count.',
      '- **Payloads**: the message data is `{ s: sequence, t: send time, p: padding }`, padded so its JSON is exactly 64 or 4096 bytes, serialized once per message by every server.',
    ].join('\n'),
  );
  lines.push('');
  lines.push(
    'Run it yourself: `npm run bench` (add `-- --scales 500,1000` for a quicker run, `-- --profile DIR` to write CPU profiles of the servers, summarized by `bun bench/profile-summary.ts DIR/*.cpuprofile`).',
  );
  lines.push('');
  return lines.join('\n');
}

// ------------------------------------------------------------------ chart

const COLORS: Record<TServerKind, string> = {
  raw: '#6b7280',
  helper: '#2563eb',
  socketio: '#d97706',
  ignis: '#7c3aed',
  'raw-seeds': '#9ca3af',
  'helper-metrics': '#0891b2',
  'helper-fleet': '#0e7490',
  'helper-history': '#059669',
  'helper-spec': '#0e7490',
  'socketio-csr': '#b45309',
};
const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

function svg(run: IRunResult): string {
  const width = 1000;
  const kinds: TServerKind[] = ['raw', 'helper', 'socketio'];
  const workloads: TWorkload[] = ['fanout-64', 'fanout-4k', 'exclude-64', 'broadcast-64', 'cross-64'];
  // Panel 1: CPU per delivered message at the largest scale where the workloads ran.
  const scale =
    [...run.config.scales]
      .reverse()
      .find((n) => workloads.some((w) => kinds.every((k) => ok(find(run, k, n, w))))) ??
    run.config.scales.at(-1) ??
    0;
  const values = workloads.flatMap((w) =>
    kinds.map((k) => {
      const r = find(run, k, scale, w);
      return ok(r) ? (r.cpuUsPerDelivery ?? null) : null;
    }),
  );
  const positive = values.filter((v): v is number => v !== null && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive, 0.1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive, 1)));
  const p1 = { x: 260, y: 70, w: 600, h: 250 };
  const rowH = p1.h / workloads.length;
  const barH = (rowH - 10) / kinds.length;
  const xOf = (v: number) =>
    p1.x + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * p1.w;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="HEIGHT" viewBox="0 0 ${width} HEIGHT" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="HEIGHT" fill="#ffffff"/>`);
  out.push(
    `<text x="20" y="28" font-size="17" font-weight="600">Server CPU per delivered message, ${int(scale)} clients (log scale, lower is better)</text>`,
  );
  out.push(
    `<text x="20" y="48" fill="#555">${esc(`${run.machine.nproc} cores ${run.machine.cpuModel}, Bun ${run.machine.bun}, Node ${run.machine.node} — ${run.startedAt.slice(0, 10)}${run.status === 'ok' ? '' : ' — RUN FAILED'}`)}</text>`,
  );
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const x = xOf(d);
    out.push(`<line x1="${x}" y1="${p1.y}" x2="${x}" y2="${p1.y + p1.h}" stroke="#e5e7eb"/>`);
    out.push(
      `<text x="${x}" y="${p1.y + p1.h + 16}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toPrecision(1)} µs</text>`,
    );
  }
  workloads.forEach((w, wi) => {
    const y0 = p1.y + wi * rowH + 5;
    out.push(
      `<text x="${p1.x - 10}" y="${y0 + rowH / 2}" text-anchor="end" dominant-baseline="middle">${esc(WORKLOAD_LABEL[w].replace(' to a room', '').replace(' excluding the sender', ' minus sender'))}</text>`,
    );
    kinds.forEach((k, ki) => {
      const r = find(run, k, scale, w);
      const y = y0 + ki * barH;
      if (!ok(r) || r.cpuUsPerDelivery === undefined) {
        out.push(
          `<text x="${p1.x + 4}" y="${y + barH / 2}" dominant-baseline="middle" fill="#b91c1c">${r ? 'FAILED' : 'not run'}</text>`,
        );
        return;
      }
      const x1 = xOf(Math.max(r.cpuUsPerDelivery, lo));
      out.push(
        `<rect x="${p1.x}" y="${y}" width="${Math.max(1, x1 - p1.x)}" height="${barH - 2}" fill="${COLORS[k]}"/>`,
      );
      out.push(
        `<text x="${x1 + 4}" y="${y + barH / 2}" dominant-baseline="middle" font-size="11">${us(r.cpuUsPerDelivery)} µs</text>`,
      );
    });
  });
  kinds.forEach((k, i) => {
    const x = p1.x + i * 150;
    out.push(`<rect x="${x}" y="${p1.y + p1.h + 28}" width="12" height="12" fill="${COLORS[k]}"/>`);
    out.push(`<text x="${x + 18}" y="${p1.y + p1.h + 38}">${KIND_LABEL[k]}</text>`);
  });

  // Panel 2: each target as a share of its limit, one dot per scale.
  const p2 = { x: 300, y: 450, w: 480, h: 0 };
  const targets = run.targets;
  const rowH2 = 26;
  p2.h = targets.length * rowH2;
  const share = (t: ITargetCheck, v: number) => (t.op === '<=' ? v / t.limit : t.limit / v);
  const maxShare = Math.max(
    1.6,
    ...targets.flatMap((t) => t.values.filter((v) => v.value !== null).map((v) => share(t, v.value!))),
  );
  const top = Math.min(4, Math.ceil(maxShare * 2) / 2);
  const xs = (s: number) => p2.x + (Math.min(s, top) / top) * p2.w;
  out.push(
    `<text x="20" y="${p2.y - 42}" font-size="17" font-weight="600">Targets: measured value as a share of the allowed limit (left of the red line holds)</text>`,
  );
  out.push(
    `<text x="20" y="${p2.y - 22}" fill="#555">one dot per scale: ${run.config.scales.map((n) => int(n)).join(' / ')} clients (small to large); the label is the measured value</text>`,
  );
  for (let s = 0; s <= top + 1e-9; s += 0.5) {
    const x = xs(s);
    out.push(`<line x1="${x}" y1="${p2.y - 4}" x2="${x}" y2="${p2.y + p2.h}" stroke="#e5e7eb"/>`);
    out.push(
      `<text x="${x}" y="${p2.y + p2.h + 16}" text-anchor="middle" fill="#555">${s.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<line x1="${xs(1)}" y1="${p2.y - 8}" x2="${xs(1)}" y2="${p2.y + p2.h}" stroke="#dc2626" stroke-width="2" stroke-dasharray="5 3"/>`,
  );
  const short: Record<string, string> = {
    'fanout-64-cpu': 'fan-out 64 B CPU, helper÷raw ≤ 1.05',
    'fanout-4k-cpu': 'fan-out 4 KB CPU, helper÷raw ≤ 1.05',
    'exclude-cpu': 'minus-sender CPU, helper÷raw ≤ 1.3',
    'cross-cpu': 'cross-instance CPU, helper÷raw ≤ 1.3',
    memory: 'memory/conn, helper÷raw ≤ 1.25',
    'connect-rate': 'connect rate, helper÷raw ≥ 0.85',
    'paced-p99': 'paced p99 latency ≤ 2 ms',
    'socketio-fanout': 'fan-out 64 B CPU, Socket.IO÷helper ≥ 10',
    'socketio-fanout-4k': 'fan-out 4 KB CPU, Socket.IO÷helper ≥ 10',
    'encrypted-vs-ignis': 'encrypted fan-out CPU, Ignis÷helper ≥ 5',
    'encrypted-vs-plain': 'encrypted fan-out CPU, helper on÷off ≤ 10',
    'encrypted-spec-vs-ignis': 'spec transformer CPU, helper÷Ignis ≤ 1',
  };
  targets.forEach((t, i) => {
    const y = p2.y + i * rowH2 + rowH2 / 2;
    out.push(
      `<text x="${p2.x - 12}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(short[t.id] ?? t.label)}</text>`,
    );
    const measured = t.values.filter((v) => v.value !== null);
    measured.forEach((v, j) => {
      const s = share(t, v.value!);
      const x = xs(s);
      const color = v.holds ? '#16a34a' : '#dc2626';
      const dy = (j - (measured.length - 1) / 2) * 6;
      out.push(`<circle cx="${x}" cy="${y + dy}" r="${3 + j}" fill="${color}" fill-opacity="0.75"/>`);
    });
    const label = measured
      .map((v) => targetValue(t, v).replaceAll('**', '').replace(' (miss)', ''))
      .join(' / ');
    out.push(
      `<text x="${p2.x + p2.w + 10}" y="${y}" dominant-baseline="middle" font-size="11" fill="#333">${esc(label || 'not measured')}</text>`,
    );
  });
  out.push('</svg>');
  // As tall as the targets panel needs (its axis labels sit 16 px below it): the first two lines say so.
  const height = String(Math.max(720, p2.y + p2.h + 40));
  for (const i of [0, 1]) out[i] = out[i]!.replaceAll('HEIGHT', height);
  return out.join('\n');
}

// ------------------------------------------------------------------ outputs

async function write(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await Bun.write(path, text);
}

export function printTables(run: IRunResult): void {
  if (run.clusterApi) console.log(`\n${clusterApiSection(run.clusterApi).join('\n')}`);
  if (run.roomKeys) console.log(`\n${roomKeysSection(run.roomKeys).join('\n')}`);
  if (run.sendThroughput) console.log(`\n${sendThroughputSection(run.sendThroughput).join('\n')}`);
  for (const clients of run.config.scales) {
    console.log(`\n${int(clients)} authenticated clients`);
    console.log(consoleTable(tableRows(run, clients)));
  }
  if (run.config.encryptedClients > 0) {
    console.log(`\nencrypted fan-out, ${int(run.config.encryptedClients)} clients`);
    console.log(consoleTable(encryptedRows(run), ENCRYPTED_HEADER));
  }
  if (run.capacity?.length)
    console.log(`\ncapacity\n${consoleTable(capacityRows(run.capacity), CAPACITY_HEADER)}`);
  if (run.scaling?.length)
    console.log(`\nscaling\n${consoleTable(scalingRows(run.scaling), SCALING_HEADER)}`);
  console.log('\nTargets');
  for (const t of run.targets) {
    console.log(
      `  ${verdict(t.holds).replaceAll('*', '').padEnd(12)} ${t.label}: ${t.values.map((v) => targetValue(t, v).replaceAll('*', '')).join(' / ')}`,
    );
  }
  if (run.failures.length > 0) {
    console.log('\nFAILED workloads');
    for (const f of run.failures) console.log(`  ${f}`);
  }
}

export async function writeOutputs(run: IRunResult, opts: { docs: boolean }): Promise<void> {
  run.targets = evaluateTargets(run);
  printTables(run);
  const json = `${JSON.stringify(run, null, 2)}\n`;
  await write(`${ROOT}bench/results/latest.json`, json);
  if (!opts.docs) return;
  await write(`${ROOT}docs/benchmarks.json`, json);
  await renderDocs(run);
}

/** docs/benchmarks.md and .svg from a run (also used by bench/report.ts to re-render). */
export async function renderDocs(run: IRunResult): Promise<void> {
  run.targets = evaluateTargets(run);
  await write(`${ROOT}docs/benchmarks.md`, markdown(run));
  await write(`${ROOT}docs/benchmarks.svg`, `${svg(run)}\n`);
}
