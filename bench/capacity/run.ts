// The capacity run (issues 12 and 14): how many concurrent authenticated connections roomcast's
// helper holds here, at what RSS per connection, and how fast one room message reaches all of them.
//
//   bun run bench/capacity/run.ts [--only one|three|three-rooms|one-rooms] [--one N] [--three N]
//                                 [--paced N] [--interval-ms N] [--no-rooms] [--concurrency N]
//
// Scenario `one`: about 19,500 connections on ONE instance (a process here may hold at most 20,000
// open files). Scenario `three`: 50,000 over THREE instances sharing one redis-server, all in one
// room that spans them. `three-rooms` and `one-rooms`: the same with `subscriptionMode: 'rooms'`
// (the mode docs/scaling.md recommends at scale), where `connected` waits for the SUBSCRIBE of the
// client's own channels, so connect time includes that round trip. The load clients run in several processes (each well under the file limit),
// each binding its own loopback source addresses (127.0.0.2, 127.0.0.3, …). Per scenario: RSS per
// connection of every instance (RSS after connecting minus before, both after a full GC), the time
// for one 64-byte `send()` from instance A to reach every member (counted: none lost), and paced
// latency (one message every --interval-ms, measured at the clients from the send time stamped into
// the message); Redis's `used_memory` before and after connecting, its channels and patterns, and its
// CPU time during the connects. Bounded: every scenario gives up past its deadline; every child is killed at the end.
// `npm run bench` runs the same scenarios as a phase (bench/run.ts --capacity-only / --no-capacity).

import type { Subprocess } from 'bun';
import { summarize } from '../lib/histogram.ts';
import {
  fileLimit,
  type IServerProc,
  redisCpuUs,
  settleClients,
  spawnCommandProcess,
  startRedis,
  startServer,
  stopAll,
} from '../lib/procs.ts';
import { type IPaceRequest, type IPublishRequest, ROOM } from '../lib/shared.ts';
import type { ICapacityReply, ICapacityResult, TCapacityCommand } from './protocol.ts';

export type TCapacityMode = 'pattern' | 'rooms';

export interface ICapacityScenario {
  name: string;
  /** The instances' `subscriptionMode` (bench/servers/helper.ts, BENCH_SUBSCRIPTION_MODE). */
  mode: TCapacityMode;
  instances: number;
  connections: number;
  clientProcesses: number;
  pacedMessages: number;
  pacedIntervalMs: number;
  /** Last byte of the first loopback source address (127.0.0.N): each scenario has its own. */
  firstSourceAddress: number;
  /** Sockets each client process has connecting at once. */
  concurrency: number;
}

/** What a server process needs beside its clients (Redis connections, the listener, stdio, …). */
const SERVER_RESERVE = 400;
/** Sockets each client process opens at once, unless a scenario says otherwise (--concurrency). */
const CONNECT_CONCURRENCY = 64;
const WARM_UP_CONNECTIONS = 100;
const SCENARIO_DEADLINE_MS = 240_000;

export function capacityScenarios(opts: {
  one?: number;
  three?: number;
  pacedMessages?: number;
  pacedIntervalMs?: number;
  /** Adds the `'rooms'`-mode scenarios (three-rooms, one-rooms); on unless false. */
  rooms?: boolean;
  concurrency?: number;
}): ICapacityScenario[] {
  const one = opts.one ?? 19_500;
  const three = opts.three ?? 50_000;
  // One message every 20 ms per 1,000 members (400 ms at 19,500, 1 s at 50,000): the load clients
  // share the two cores with the servers, so a shorter interval measures a queue, not latency.
  const paced = (n: number) => ({
    pacedMessages: opts.pacedMessages ?? 8,
    pacedIntervalMs: opts.pacedIntervalMs ?? Math.max(100, Math.ceil(n / 1_000) * 20),
  });
  // Client processes of at most ~13,000 sockets: well under the file limit, and several of them
  // share the receive work over the cores.
  const processes = (n: number) => Math.max(2, Math.ceil(n / 13_000));
  const scenario = (
    name: string,
    mode: TCapacityMode,
    instances: number,
    connections: number,
    first: number,
  ) => ({
    name,
    mode,
    instances,
    connections,
    clientProcesses: processes(connections),
    firstSourceAddress: first,
    concurrency: opts.concurrency ?? CONNECT_CONCURRENCY,
    ...paced(connections),
  });
  // Each scenario's source addresses are its own (127.0.0.2–5, 20–27, 40–47, 60–63): ports a
  // scenario leaves in TIME_WAIT never block the next.
  return [
    scenario('one', 'pattern', 1, one, 2),
    scenario('three', 'pattern', 3, three, 20),
    ...(opts.rooms === false
      ? []
      : [scenario('three-rooms', 'rooms', 3, three, 40), scenario('one-rooms', 'rooms', 1, one, 60)]),
  ];
}

/** Redis's `INFO` fields this run reads: memory in use, channels and patterns subscribed. */
function redisInfo(port: number): { usedMemory: number; channels: number; patterns: number } {
  const info = Bun.spawnSync(['redis-cli', '-p', String(port), 'INFO']).stdout.toString();
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    usedMemory: field('used_memory'),
    channels: field('pubsub_channels'),
    patterns: field('pubsub_patterns'),
  };
}

interface IClient {
  proc: Subprocess;
  call(cmd: TCapacityCommand, timeoutMs: number): Promise<ICapacityReply>;
}

function startLoadClient(name: string): Promise<IClient> {
  return spawnCommandProcess<TCapacityCommand, ICapacityReply>(
    `load client ${name}`,
    new URL('./client.ts', import.meta.url).pathname,
    (error) => ({ ok: false, error }),
  );
}

async function clientsOf(servers: IServerProc[]): Promise<number[]> {
  return Promise.all(
    servers.map(async (s) => {
      const res = await fetch(`http://127.0.0.1:${s.port}/ctl/stats`);
      return ((await res.json()) as { clients: number }).clients;
    }),
  );
}

/** Waits until the instances together report `total` clients (closes are forgotten asynchronously). */
async function settleTotal(servers: IServerProc[], total: number): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const held = await clientsOf(servers);
    if (held.reduce((a, b) => a + b, 0) === total || Date.now() > deadline) return held;
    await Bun.sleep(50);
  }
}

/** Arms every client for `expect` messages, runs `emit`, and merges what the clients saw. */
async function deliver(
  clients: IClient[],
  expect: number,
  timeoutMs: number,
  emit: () => Promise<void>,
): Promise<{ replies: ICapacityReply[]; delivered: number; anomalies: number; error?: string }> {
  for (const c of clients) await c.call({ cmd: 'arm', expect }, 10_000);
  const waits = clients.map((c) => c.call({ cmd: 'await', timeoutMs }, timeoutMs + 10_000));
  await emit();
  const replies = await Promise.all(waits);
  const delivered = replies.reduce((n, r) => n + (r.received ?? 0), 0);
  const anomalies = replies.reduce(
    (n, r) => n + (r.outOfOrder ?? 0) + (r.malformed ?? 0) + (r.closed ?? 0),
    0,
  );
  return { replies, delivered, anomalies, error: replies.find((r) => !r.ok)?.error };
}

/**
 * Source addresses of client process p: two of its own, so no two processes share one's ports.
 * A bound source port stays taken while its connection is in TIME_WAIT (60 s), so the servers
 * close first at the end (TIME_WAIT then lands on their side) and each scenario has its own range.
 */
function sourceAddresses(scenario: ICapacityScenario, p: number): string[] {
  const first = scenario.firstSourceAddress + 2 * p;
  return [`127.0.0.${first}`, `127.0.0.${first + 1}`];
}

export async function capacityScenario(
  scenario: ICapacityScenario,
  log: (line: string) => void,
): Promise<ICapacityResult> {
  const started = performance.now();
  const limit = fileLimit();
  const perInstance = Math.ceil(scenario.connections / scenario.instances);
  const result: ICapacityResult = {
    name: scenario.name,
    status: 'FAILED',
    mode: scenario.mode,
    instances: scenario.instances,
    clientProcesses: scenario.clientProcesses,
    sourceAddresses: Array.from({ length: scenario.clientProcesses }, (_, p) =>
      sourceAddresses(scenario, p),
    ).flat(),
    target: scenario.connections,
    held: 0,
    heldByInstance: [],
    errors: 0,
    connectMs: 0,
    connectConcurrency: scenario.concurrency,
    connectCpuUsPerConnection: [],
    rssBeforeBytes: [],
    rssAfterBytes: [],
    rssPerConnectionBytes: [],
    heapPerConnectionBytes: [],
    redisUsedMemoryBeforeBytes: 0,
    redisUsedMemoryAfterBytes: 0,
    redisBytesPerConnection: 0,
    redisConnectCpuUsPerConnection: 0,
    redisChannels: 0,
    redisPatterns: 0,
    wallMs: 0,
  };
  if (perInstance + SERVER_RESERVE > limit) {
    result.error = `${perInstance} connections per instance do not fit the open-file limit ${limit}`;
    return result;
  }
  const servers: IServerProc[] = [];
  const clients: IClient[] = [];
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    for (const c of clients) c.proc.kill('SIGKILL');
    for (const s of servers) s.proc.kill('SIGKILL');
  }, SCENARIO_DEADLINE_MS);
  try {
    const redis = await startRedis();
    for (let i = 0; i < scenario.instances; i++) {
      servers.push(
        await startServer('helper', String.fromCharCode(65 + i), redis.port, limit, {
          BENCH_SUBSCRIPTION_MODE: scenario.mode,
        }),
      );
    }
    const ports = servers.map((s) => s.port);
    for (let p = 0; p < scenario.clientProcesses; p++) clients.push(await startLoadClient(`cap-${p}`));

    // Warm-up: the paths once with a few clients, so compiling them is not counted as memory.
    const warm = await clients[0]!.call(
      {
        cmd: 'connect',
        ports,
        count: WARM_UP_CONNECTIONS,
        localAddresses: sourceAddresses(scenario, 0),
        concurrency: 16,
        tag: 'w',
        room: ROOM,
      },
      60_000,
    );
    if (!warm.ok) throw new Error(`warm-up: ${warm.error}`);
    const warmRun = await deliver([clients[0]!], 1, 10_000, () => servers[0]!.post('/ctl/publish', fanout()));
    if (warmRun.error) throw new Error(`warm-up: ${warmRun.error}`);
    await clients[0]!.call({ cmd: 'close' }, 10_000);
    for (const s of servers) await settleClients(s, 0);

    const before = await Promise.all(servers.map((s) => s.memory()));
    const redisBefore = redisInfo(redis.port);
    const redisCpuBefore = redisCpuUs(redis.port);
    log(
      `capacity ${scenario.name} (${scenario.mode}): connecting ${scenario.connections} clients to ${scenario.instances} instance(s) from ${scenario.clientProcesses} processes`,
    );
    const connectCpuBefore = await Promise.all(servers.map((s) => s.cpu()));
    const t0 = performance.now();
    const shares = clients.map(
      (_, p) =>
        Math.floor(scenario.connections / clients.length) +
        (p < scenario.connections % clients.length ? 1 : 0),
    );
    const connects = await Promise.all(
      clients.map((c, p) =>
        c.call(
          {
            cmd: 'connect',
            ports,
            count: shares[p]!,
            localAddresses: sourceAddresses(scenario, p),
            concurrency: scenario.concurrency,
            tag: String(p),
            room: ROOM,
          },
          SCENARIO_DEADLINE_MS,
        ),
      ),
    );
    result.connectMs = performance.now() - t0;
    const connectCpuAfter = await Promise.all(servers.map((s) => s.cpu()));
    const redisCpuAfter = redisCpuUs(redis.port);
    const connected = connects.reduce((n, r) => n + (r.connected ?? 0), 0);
    const failed = connects.reduce((n, r) => n + (r.failed ?? 0), 0);
    result.heldByInstance = await settleTotal(servers, connected);
    result.held = result.heldByInstance.reduce((a, b) => a + b, 0);
    result.errors = failed + Math.abs(scenario.connections - result.held);
    result.connectCpuUsPerConnection = connectCpuAfter.map(
      (c, i) =>
        (c.user + c.system - connectCpuBefore[i]!.user - connectCpuBefore[i]!.system) /
        Math.max(1, result.heldByInstance[i]!),
    );
    const redisAfter = redisInfo(redis.port);
    result.redisUsedMemoryBeforeBytes = redisBefore.usedMemory;
    result.redisUsedMemoryAfterBytes = redisAfter.usedMemory;
    result.redisBytesPerConnection =
      (redisAfter.usedMemory - redisBefore.usedMemory) / Math.max(1, result.held);
    result.redisConnectCpuUsPerConnection = (redisCpuAfter - redisCpuBefore) / Math.max(1, result.held);
    result.redisChannels = redisAfter.channels;
    result.redisPatterns = redisAfter.patterns;
    const failure = connects.find((r) => !r.ok);
    log(
      `capacity ${scenario.name}: ${result.held} held (${result.heldByInstance.join(' + ')}), ${failed} failed, in ${Math.round(result.connectMs)} ms${failure ? `; first error: ${failure.error}` : ''}`,
    );
    const after = await Promise.all(servers.map((s) => s.memory()));
    result.rssBeforeBytes = before.map((m) => m.rss);
    result.rssAfterBytes = after.map((m) => m.rss);
    result.rssPerConnectionBytes = after.map(
      (m, i) => (m.rss - before[i]!.rss) / Math.max(1, result.heldByInstance[i]!),
    );
    result.heapPerConnectionBytes = after.map(
      (m, i) => (m.heapUsed - before[i]!.heapUsed) / Math.max(1, result.heldByInstance[i]!),
    );

    // One message to the whole room, sent by instance A.
    const cpuBefore = await Promise.all(servers.map((s) => s.cpu()));
    const one = await deliver(clients, 1, 60_000, () => servers[0]!.post('/ctl/publish', fanout()));
    const cpuAfter = await Promise.all(servers.map((s) => s.cpu()));
    const oneLatency = summarize(one.replies.map((r) => r.histogram!).filter(Boolean));
    result.fanout = {
      expected: connected,
      delivered: one.delivered,
      lastMs: oneLatency.maxMs,
      p50Ms: oneLatency.p50Ms,
      serverCpuMs: cpuAfter.map(
        (c, i) => (c.user + c.system - cpuBefore[i]!.user - cpuBefore[i]!.system) / 1000,
      ),
      serverSystemShare: cpuAfter.map(
        (c, i) =>
          (c.system - cpuBefore[i]!.system) /
          Math.max(1, c.user + c.system - cpuBefore[i]!.user - cpuBefore[i]!.system),
      ),
    };
    result.errors += Math.abs(connected - one.delivered) + one.anomalies;

    // Paced: one message every pacedIntervalMs, latency of every delivery.
    const { pacedMessages: messages, pacedIntervalMs: intervalMs } = scenario;
    const paced = await deliver(clients, messages, messages * intervalMs + 60_000, () =>
      servers[0]!.post('/ctl/pace', {
        room: ROOM,
        count: messages,
        intervalMs,
        size: 64,
      } satisfies IPaceRequest),
    );
    const pacedLatency = summarize(paced.replies.map((r) => r.histogram!).filter(Boolean));
    result.paced = {
      messages,
      intervalMs,
      expected: connected * messages,
      delivered: paced.delivered,
      p50Ms: pacedLatency.p50Ms,
      p99Ms: pacedLatency.p99Ms,
      maxMs: pacedLatency.maxMs,
    };
    result.errors += Math.abs(connected * messages - paced.delivered) + paced.anomalies;
    const problem = failure?.error ?? one.error ?? paced.error;
    if (result.errors === 0) result.status = 'ok';
    else result.error = problem ?? `${result.errors} errors`;
  } catch (error) {
    result.error = timedOut
      ? `gave up after ${SCENARIO_DEADLINE_MS} ms`
      : error instanceof Error
        ? error.message
        : String(error);
  } finally {
    clearTimeout(deadline);
    // Servers first: the side that closes keeps the TIME_WAIT, and the clients' source ports stay free.
    await Promise.all(servers.map((s) => s.stop()));
    for (const c of clients) c.proc.kill('SIGKILL');
    await Promise.all(clients.map((c) => c.proc.exited));
    result.wallMs = performance.now() - started;
  }
  log(`capacity ${scenario.name}: ${describe(result)}`);
  return result;
}

function fanout(): IPublishRequest {
  return { mode: 'send', room: ROOM, count: 1, size: 64, seq: 0 };
}

const kb = (bytes: number) => `${Math.round(bytes).toLocaleString('en-US')} B`;

/** One console line per scenario. */
export function describe(r: ICapacityResult): string {
  if (r.status !== 'ok') return `FAILED: ${r.error}`;
  return [
    `${r.held.toLocaleString('en-US')} held on ${r.instances} instance(s) ('${r.mode}'), ${r.errors} errors`,
    `connect ${(r.connectMs / 1000).toFixed(1)} s (server CPU ${r.connectCpuUsPerConnection.map((us) => us.toFixed(0)).join(' / ')} µs/conn)`,
    `RSS/conn ${r.rssPerConnectionBytes.map(kb).join(' / ')}`,
    `Redis ${kb(r.redisBytesPerConnection)}/conn (${r.redisChannels} channels, ${r.redisPatterns} patterns), CPU ${r.redisConnectCpuUsPerConnection.toFixed(1)} µs/conn during connect`,
    `one message to all: ${r.fanout?.delivered} delivered, last after ${r.fanout?.lastMs.toFixed(1)} ms (server CPU ${r.fanout?.serverCpuMs.map((ms) => ms.toFixed(1)).join(' / ')} ms, kernel ${r.fanout?.serverSystemShare.map((x) => `${Math.round(x * 100)} %`).join(' / ')})`,
    `paced (${r.paced?.messages} × every ${r.paced?.intervalMs} ms): p50 ${r.paced?.p50Ms.toFixed(1)} p99 ${r.paced?.p99Ms.toFixed(1)} max ${r.paced?.maxMs.toFixed(1)} ms, ${r.paced?.delivered} of ${r.paced?.expected} delivered`,
  ].join('; ');
}

/** Runs the scenarios one after the other (the `three` one needs the whole machine). */
export async function capacityPhase(
  scenarios: ICapacityScenario[],
  log: (line: string) => void,
): Promise<ICapacityResult[]> {
  const results: ICapacityResult[] = [];
  for (const scenario of scenarios) results.push(await capacityScenario(scenario, log));
  return results;
}

if (import.meta.main) {
  const arg = (name: string) => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? process.argv[at + 1] : undefined;
  };
  const num = (name: string) => (arg(name) === undefined ? undefined : Number(arg(name)));
  const only = arg('--only');
  const scenarios = capacityScenarios({
    one: num('--one'),
    three: num('--three'),
    pacedMessages: num('--paced'),
    pacedIntervalMs: num('--interval-ms'),
    rooms: !process.argv.includes('--no-rooms'),
    concurrency: num('--concurrency'),
  }).filter((s) => only === undefined || s.name === only);
  const t0 = Date.now();
  const log = (line: string) =>
    console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  let code = 1;
  try {
    const results = await capacityPhase(scenarios, log);
    console.log(JSON.stringify(results, null, 2));
    code = results.every((r) => r.status === 'ok') ? 0 : 1;
  } finally {
    await stopAll();
  }
  process.exit(code);
}
