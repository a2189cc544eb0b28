// Probe: where the memory and the connect CPU of an authenticated connection go, helper against the
// four-topic floor (raw Bun subscribing the client id, the broadcast topic and the two default rooms).
// The benchmark's own server files and client processes (bench/servers, bench/clients), the kinds
// alternating in each round; each side reads, from inside the server after a full GC: resident size,
// the JavaScript heap (bun:jsc heapStats: live bytes, capacity, objects by type), mimalloc's bytes in
// use (native allocations: sockets, topic subscriptions), and CPU time over the connect phase.
// Prints per connection and the helper's excess over the floor; writes nothing.
//   bun run bench/probes/connection-cost.ts [--clients 5000] [--rounds 3] [--kinds raw-seeds,helper]
//   [--profile DIR]  (the servers write CPU profiles there: bun bench/profile-summary.ts DIR/helper-*)

import { fileLimit, startClient, startRedis, startServer, stopAll } from '../lib/procs.ts';
import type { TServerKind } from '../lib/shared.ts';

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const CLIENTS = Number(arg('--clients') ?? 5_000);
const ROUNDS = Number(arg('--rounds') ?? 3);
const KINDS = (arg('--kinds') ?? 'raw-seeds,helper').split(',') as TServerKind[];
const PROFILE = arg('--profile');
if (PROFILE) process.env.BENCH_PROFILE_DIR = PROFILE;
const CONCURRENCY = 64;

interface IHeapSample {
  rss: number;
  heapSize: number;
  heapCapacity: number;
  extraMemorySize: number;
  objectCount: number;
  mallocInUse?: number;
  mallocCommitted?: number;
  mallocBins?: Record<string, number>;
  objectTypeCounts: Record<string, number>;
}

interface IRound {
  /** Per connection: each figure's growth over the connect phase divided by the clients. */
  perConnection: Record<string, number>;
  objects: Record<string, number>;
}

const FIGURES = [
  ['rss', 'resident size'],
  ['heapSize', 'JS heap, live bytes'],
  ['heapCapacity', 'JS heap, capacity (blocks held)'],
  ['extraMemorySize', 'JS heap, extra memory reported by objects'],
  ['mallocInUse', 'mimalloc, bytes in use (native)'],
  ['mallocCommitted', 'mimalloc, committed'],
  ['cpuUs', 'server CPU µs'],
] as const;

const limit = fileLimit();
const redis = await startRedis();
const pair = await Promise.all([startClient('probe-0'), startClient('probe-1')]);
const halves = [Math.ceil(CLIENTS / 2), Math.floor(CLIENTS / 2)];

async function connect(kind: TServerKind, url: string, count: number[], tag: string): Promise<void> {
  const replies = await Promise.all(
    pair.map((client, i) =>
      client.call({
        cmd: 'connect',
        kind,
        url,
        count: count[i]!,
        concurrency: CONCURRENCY,
        encrypted: false,
        tag: `${tag}${i}`,
      }),
    ),
  );
  for (const r of replies) if (!r.ok) throw new Error(`${kind}: ${r.failed} connections failed (${r.error})`);
}

async function settle(port: number, expected: number): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 20) {
    const { clients } = (await (await fetch(`http://127.0.0.1:${port}/ctl/stats`)).json()) as {
      clients: number;
    };
    if (clients === expected) return;
    await Bun.sleep(20);
  }
  throw new Error(`server did not reach ${expected} clients`);
}

async function round(kind: TServerKind): Promise<IRound> {
  const server = await startServer(kind, 'A', redis.port, limit);
  const heap = async () =>
    (await (await fetch(`http://127.0.0.1:${server.port}/ctl/heapstats`)).json()) as IHeapSample;
  const cpu = async () => {
    const { user, system } = await server.cpu();
    return user + system;
  };
  try {
    // Warm-up, as in run.ts: the paths are compiled before anything is measured.
    await connect(kind, server.url, [50, 0], 'w');
    await Promise.all(pair.map((c) => c.call({ cmd: 'close' })));
    await settle(server.port, 0);
    const before = await heap();
    const threads = async () =>
      (await (await fetch(`http://127.0.0.1:${server.port}/ctl/threads`)).json()) as Record<string, number>;
    const threadsBefore = await threads();
    const cpuBefore = await cpu();
    await connect(kind, server.url, halves, 'm');
    const cpuUs = (await cpu()) - cpuBefore;
    const threadsAfter = await threads();
    await settle(server.port, CLIENTS);
    const after = await heap();
    const perConnection: Record<string, number> = { cpuUs: cpuUs / CLIENTS };
    // The JavaScript (main) thread against the rest (GC helper threads and others), by name.
    for (const [name, us] of Object.entries(threadsAfter)) {
      perConnection[`thread ${name}`] = (us - (threadsBefore[name] ?? 0)) / CLIENTS;
    }
    for (const [key] of FIGURES) {
      if (key === 'cpuUs') continue;
      perConnection[key] = ((after[key] ?? 0) - (before[key] ?? 0)) / CLIENTS;
    }
    const objects: Record<string, number> = {};
    for (const [type, count] of Object.entries(after.objectTypeCounts)) {
      const grown = (count - (before.objectTypeCounts[type] ?? 0)) / CLIENTS;
      if (Math.abs(grown) >= 0.05) objects[type] = grown;
    }
    // Native blocks by size class, as pseudo-types (`malloc 48 B`).
    for (const [size, count] of Object.entries(after.mallocBins ?? {})) {
      const grown = (count - (before.mallocBins?.[size] ?? 0)) / CLIENTS;
      if (Math.abs(grown) >= 0.05) objects[`malloc ${size} B`] = grown;
    }
    await Promise.all(pair.map((c) => c.call({ cmd: 'close' })));
    return { perConnection, objects };
  } finally {
    await server.stop();
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const rounds = new Map<TServerKind, IRound[]>(KINDS.map((k) => [k, []]));
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of KINDS) {
      const result = await round(kind);
      rounds.get(kind)!.push(result);
      const p = result.perConnection;
      console.log(
        `round ${r + 1} ${kind.padEnd(10)} rss ${Math.round(p.rss!)} B  heap ${Math.round(p.heapSize!)} B  malloc ${Math.round(p.mallocInUse!)} B  cpu ${p.cpuUs!.toFixed(1)} µs`,
      );
    }
  }
} finally {
  await Promise.all(pair.map((c) => c.stop()));
  await stopAll();
}

const floorKind = KINDS[0]!;
const fmt = (n: number) => (Math.abs(n) < 10 ? n.toFixed(2) : Math.round(n).toLocaleString('en-US'));
const medianOf = (kind: TServerKind, pick: (r: IRound) => number | undefined) =>
  median(rounds.get(kind)!.map((r) => pick(r) ?? 0));
console.log(`\n${CLIENTS} clients, median of ${ROUNDS} rounds, per connection:`);
console.log(['figure', ...KINDS, `${KINDS.at(-1)} − ${floorKind}`].join(' | '));
const figureKeys = new Set<string>(FIGURES.map(([key]) => key));
const threadKeys = new Set(
  KINDS.flatMap((k) => rounds.get(k)!.flatMap((r) => Object.keys(r.perConnection))).filter(
    (key) => !figureKeys.has(key),
  ),
);
for (const [key, label] of [...FIGURES, ...[...threadKeys].map((k) => [k, `CPU µs, ${k}`] as const)]) {
  const values = KINDS.map((k) => medianOf(k, (r) => r.perConnection[key]));
  console.log([label, ...values.map(fmt), fmt(values.at(-1)! - values[0]!)].join(' | '));
}
const types = new Set(KINDS.flatMap((k) => rounds.get(k)!.flatMap((r) => Object.keys(r.objects))));
console.log('\nobjects by type (growth per connection):');
const typeRows = [...types].map((type) => {
  const values = KINDS.map((k) => medianOf(k, (r) => r.objects[type]));
  return { type, values, excess: values.at(-1)! - values[0]! };
});
typeRows.sort((a, b) => Math.abs(b.excess) - Math.abs(a.excess));
for (const { type, values, excess } of typeRows) {
  console.log([type, ...values.map((v) => v.toFixed(2)), excess.toFixed(2)].join(' | '));
}
