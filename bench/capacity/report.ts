// The capacity and scaling sections of docs/benchmarks.md (called from bench/lib/report.ts).

import type { IScalingResult } from '../scaling/run.ts';
import type { ICapacityResult } from './protocol.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n >= 100 ? int(n) : n.toFixed(1));

function table(header: string[], rows: string[][]): string {
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function capacityRows(results: ICapacityResult[]): string[][] {
  return results.map((r) => {
    if (r.status !== 'ok') {
      return [
        r.name,
        String(r.instances),
        `FAILED: ${(r.error ?? '').replaceAll('|', '\\|')}`,
        '',
        '',
        '',
        '',
        '',
      ];
    }
    const f = r.fanout!;
    const p = r.paced!;
    return [
      `${r.name} (\`'${r.mode ?? 'pattern'}'\`, ${r.instances} instance${r.instances > 1 ? 's' : ''}, ${r.clientProcesses} client processes)`,
      `${int(r.held)} (${r.heldByInstance.map(int).join(' + ')})`,
      String(r.errors),
      r.rssPerConnectionBytes.map(int).join(' / '),
      r.redisUsedMemoryAfterBytes === undefined
        ? '—'
        : `${int(r.redisBytesPerConnection)} (${ms(r.redisUsedMemoryBeforeBytes / 1e6)} → ${ms(r.redisUsedMemoryAfterBytes / 1e6)} MB; ${int(r.redisChannels)} channels, ${int(r.redisPatterns)} patterns; CPU ${r.redisConnectCpuUsPerConnection.toFixed(1)} µs per connection)`,
      `${ms(r.connectMs / 1000)} s${r.connectConcurrency ? `, ${r.connectConcurrency} in flight per client process` : ''} (server CPU ${r.connectCpuUsPerConnection.map(int).join(' / ')} µs per connection)`,
      `${int(f.delivered)} of ${int(f.expected)}, last after ${ms(f.lastMs)} ms (p50 ${ms(f.p50Ms)} ms; server CPU ${f.serverCpuMs.map(ms).join(' / ')} ms, kernel ${f.serverSystemShare.map((x) => `${Math.round(x * 100)} %`).join(' / ')})`,
      `${p.messages} × every ${int(p.intervalMs)} ms: p50 ${ms(p.p50Ms)} / p99 ${ms(p.p99Ms)} / max ${ms(p.maxMs)} ms, ${int(p.delivered)} of ${int(p.expected)}`,
    ];
  });
}

export const CAPACITY_HEADER = [
  'scenario',
  'connections held',
  'errors',
  'RSS per connection, B (per instance)',
  'Redis memory per connection, B (used_memory before → after; subscriptions; Redis CPU while connecting)',
  'connect + authenticate + join, all',
  'one 64-byte message to all',
  'paced latency (send → every client)',
];

export function capacitySection(results: ICapacityResult[] | undefined): string[] {
  if (!results || results.length === 0) return [];
  return [
    '## Capacity: connections held on one instance and on three, in both subscription modes',
    '',
    table(CAPACITY_HEADER, capacityRows(results)),
    '',
    "`bun run bench/capacity/run.ts` (or this run's capacity phase). Every connection is authenticated and joined to one room, which spans the instances; the three instances share one redis-server. `'pattern'` is the default `subscriptionMode`; the `-rooms` scenarios run `'rooms'`, where `connected` waits for the SUBSCRIBE of the client's own channels, so their connect time includes it. Redis memory per connection: `used_memory` once every connection is held minus just before connecting, divided by the connections. The load clients run in separate processes, each binding its own loopback source addresses (" +
      `${[...new Set(results.flatMap((r) => r.sourceAddresses))].join(', ')}` +
      "; Bun's WebSocket client cannot choose one, so they speak WebSocket over `Bun.connect({ localAddress })`). RSS per connection: the instance's RSS after connecting minus before (both after three full GCs, after a 100-client warm-up), divided by the connections it holds. The single message and the paced ones are `send()` from instance A to the room; latency is each client's receive time minus the send time in the message, so it includes the load clients' own receive work on the same cores. Errors count failed, closed or missing connections and lost, repeated or malformed messages: none is allowed.",
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function spread(values: number[], digits = 1): string {
  if (values.length === 0) return '—';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const f = (n: number) => n.toFixed(digits);
  return values.length === 1 ? f(lo) : `${f(median(values))} (${f(lo)} – ${f(hi)})`;
}

const LABEL: Record<string, string> = {
  'pattern single node': "single Redis, `'pattern'`",
  'rooms single node': "single Redis, `'rooms'`",
  'pattern classic': "3-master cluster, classic Pub/Sub, `'pattern'`",
  'rooms sharded': "3-master cluster, sharded Pub/Sub, `'rooms'`",
};

export const SCALING_HEADER = [
  'configuration',
  'instance CPU µs per delivered message (busy)',
  'Redis CPU µs per message (all masters, busy)',
  'instance idle CPU, ms/s',
  'delivered',
];

export function scalingRows(results: IScalingResult[]): string[][] {
  const keys = [...new Set(results.map((r) => `${r.mode} ${r.pubSub}`))];
  const rows = keys.map((key) => {
    const runs = results.filter((r) => `${r.mode} ${r.pubSub}` === key);
    return [
      LABEL[key] ?? key,
      spread(runs.map((r) => r.instanceBusyCpuUsPerDeliveredMean)),
      spread(runs.map((r) => r.redisBusyCpuUsPerMessage)),
      spread(
        runs.map((r) => r.instanceIdleCpuUsPerSecond.reduce((a, b) => a + b, 0) / 4 / 1000),
        0,
      ),
      `${int(runs.reduce((n, r) => n + r.delivered, 0))} of ${int(runs.reduce((n, r) => n + r.messages, 0))}`,
    ];
  });
  // Ratios within each round (the configurations of a round ran back to back).
  const ratio = (topology: string, figure: (r: IScalingResult) => number, label: string) => {
    const values: number[] = [];
    for (const round of new Set(results.map((r) => r.round))) {
      const pattern = results.find(
        (r) => r.round === round && r.topology === topology && r.mode === 'pattern',
      );
      const rooms = results.find((r) => r.round === round && r.topology === topology && r.mode === 'rooms');
      if (pattern && rooms && figure(pattern) > 0) values.push(figure(rooms) / figure(pattern));
    }
    if (values.length > 0) rows.push([label, `${spread(values, 2)}×`, '', '', '']);
  };
  ratio(
    'single',
    (r) => r.instanceBusyCpuUsPerDeliveredMean,
    "single Redis: `'rooms'` ÷ `'pattern'`, instance CPU",
  );
  ratio(
    'cluster',
    (r) => r.instanceBusyCpuUsPerDeliveredMean,
    "cluster: `'rooms'` (sharded) ÷ `'pattern'` (classic), instance CPU",
  );
  const redisRatio = (topology: string, label: string) => {
    const values: number[] = [];
    for (const round of new Set(results.map((r) => r.round))) {
      const pattern = results.find(
        (r) => r.round === round && r.topology === topology && r.mode === 'pattern',
      );
      const rooms = results.find((r) => r.round === round && r.topology === topology && r.mode === 'rooms');
      if (pattern && rooms && pattern.redisBusyCpuUsPerMessage > 0)
        values.push(rooms.redisBusyCpuUsPerMessage / pattern.redisBusyCpuUsPerMessage);
    }
    if (values.length > 0) rows.push([label, '', `${spread(values, 2)}×`, '', '']);
  };
  redisRatio('cluster', 'cluster: sharded ÷ classic, Redis CPU');
  return rows;
}

export function scalingSection(results: IScalingResult[] | undefined): string[] {
  if (!results || results.length === 0) return [];
  const rounds = new Set(results.map((r) => r.round)).size;
  const first = results[0]!;
  return [
    '## Scaling: 4 instances, 1,000 rooms, pattern vs per-room subscriptions, one Redis vs a 3-master cluster',
    '',
    table(SCALING_HEADER, scalingRows(results)),
    '',
    `\`bun bench/scaling/run.ts --rounds ${rounds} --messages ${first.messages}\` (or this run's scaling phase): 4 instances (child processes), 1,000 rooms, instance *i* holds one member of each room of its quarter; an emitter publishes ${int(first.messages)} messages of about 60 bytes to uniformly random rooms. Per instance: CPU time during the traffic minus its idle CPU over the same time (measured for 1 s before), divided by the messages it delivered, averaged over the 4 instances; Redis: \`used_cpu_user + used_cpu_sys\` of every master, minus idle, per message. Cluster: 3 masters, no replicas. ${rounds} rounds, the four configurations alternating within each; figures are the median (and range) over the rounds, ratios are taken within each round. Details and the reading: [scaling.md](scaling.md).`,
  ];
}
