// The admin scale probe (issue 21): what the admin UI's reads and actions cost with tens of
// thousands of live connections over several instances. Bounded; prints its figures, writes nothing.
//
//   bun run bench/probes/admin-scale.ts [--connections 50000] [--instances 3] [--rounds 3]
//        [--window-s 10] [--reps 50] [--concurrency 64] [--deadline-s 600]
//
// --connections   authenticated WebSocket connections to hold, spread over the instances (default 50,000)
// --instances     roomcast instances, child processes over one private redis-server (default 3)
// --rounds        idle / page windows, alternating, for the instances' CPU and event-loop delay (default 3)
// --window-s      length of each of those windows in seconds (default 10)
// --reps          repetitions of each timed read, per route (default 50)
// --concurrency   sockets each load-client process has connecting at once (default 64)
// --deadline-s    hard deadline: past it every child is killed and the probe exits 2 (default 600)
//
// Each instance (admin-scale-server.ts) runs the WebSocket component with `fleet: true`, presence
// for the probe's rooms, a history for the medium rooms and one small room, the admin UI on /admin
// (one admin key) and the HTTP API component on /api (its own key, no rate limit). The load clients
// are the capacity run's (bench/capacity/client.ts), a process per ~13,000 sockets, each binding two
// loopback source addresses of its own (127.0.0.80 upwards). Rooms are skewed: 40 % of the sockets
// join `huge`, 40 % ten `medium-*` rooms, 20 % 500 `small-*` rooms (20 each at 50,000).
//
// Once every connection is held: each read the page makes on a refresh, through the admin gate
// (session cookie, `/admin/api/...`, paced under its internal key's 50/s bucket) and through the
// HTTP API (`/api/...`, bearer key), `--reps` times, with p50 / p99 / max latency, the answer's size
// and instance A's and Redis's CPU per request; the page's refreshes as it issues them (in
// parallel); one of each action the page offers; then the instances' CPU and event-loop delay
// while idle and while the page's refresh loop runs at its default interval with the huge room open.

import os from 'node:os';
import type { Subprocess } from 'bun';
import type { ICapacityReply, TCapacityCommand } from '../capacity/protocol.ts';
import { fileLimit, killAll, redisCpuUs, spawnCommandProcess, startRedis, stopAll } from '../lib/procs.ts';
import type { IAdminScaleReply, IAdminScaleSample, TAdminScaleCommand } from './admin-scale-server.ts';

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} needs a number`);
  return value;
};

const requested = arg('--connections', 50_000);
const instanceCount = Math.max(1, Math.floor(arg('--instances', 3)));
const rounds = Math.max(1, Math.floor(arg('--rounds', 3)));
const windowMs = arg('--window-s', 10) * 1000;
const reps = Math.max(1, Math.floor(arg('--reps', 50)));
const concurrency = Math.max(1, Math.floor(arg('--concurrency', 64)));
const deadlineMs = arg('--deadline-s', 600) * 1000;

/** The admin UI's defaults (src/admin-ui/options.ts, assets/admin.js) the page runs with. */
const REFRESH_MS = 2_000;
const MEMBERS_PAGE = 50;
const MEMBERS_MAX = 1_000;
const HISTORY_SHOWN = 20;
const TOP_ROOMS = 20;
/** Admin reads are paced: the page's internal API key has a bucket of 50 requests a second. */
const PACE_MS = 25;
const SERVER_RESERVE = 400;
const SOCKETS_PER_CLIENT_PROCESS = 13_000;
const ADMIN_KEY = `probe-admin-${crypto.randomUUID()}`;
const API_KEY = `probe-api-${crypto.randomUUID()}`;

const t0 = Date.now();
const log = (line: string) =>
  console.error(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);

// ------------------------------------------------------------------ rooms

/**
 * The room of socket i of a client process is plan[i % plan.length], 2,500 entries interleaved
 * so that any run of sockets is skewed alike: of every five, two join `huge`, two one of ten
 * `medium-*` rooms, one one of 500 `small-*` rooms (at 50,000 sockets: 20,000 in `huge`, 2,000 in
 * each medium room, 20 in each small one).
 */
function roomPlan(): string[] {
  const plan: string[] = [];
  for (let k = 0; k < 2_500; k++) {
    const group = Math.floor(k / 5);
    const slot = k % 5;
    if (slot < 2) plan.push('huge');
    else if (slot < 4) plan.push(`medium-${(group * 2 + slot - 2) % 10}`);
    else plan.push(`small-${group}`);
  }
  return plan;
}

// ------------------------------------------------------------------ processes

interface IInstance {
  name: string;
  port: number;
  proc: Subprocess;
  call(cmd: TAdminScaleCommand, timeoutMs: number): Promise<IAdminScaleReply>;
}

interface ILoadClient {
  proc: Subprocess;
  call(cmd: TCapacityCommand, timeoutMs: number): Promise<ICapacityReply>;
}

const instances: IInstance[] = [];
const clients: ILoadClient[] = [];

async function startInstance(name: string, redisPort: number): Promise<IInstance> {
  const child = await spawnCommandProcess<TAdminScaleCommand, IAdminScaleReply>(
    `instance ${name}`,
    new URL('./admin-scale-server.ts', import.meta.url).pathname,
    (error) => ({ ok: false, error }),
  );
  const started = await child.call(
    { cmd: 'start', redisPort, identifier: `probe-${name}`, adminKey: ADMIN_KEY, apiKey: API_KEY },
    30_000,
  );
  if (!started.ok || started.port === undefined) throw new Error(`instance ${name}: ${started.error}`);
  return { name, port: started.port, ...child };
}

async function sampleAll(): Promise<IAdminScaleSample[]> {
  const replies = await Promise.all(instances.map((i) => i.call({ cmd: 'sample' }, 10_000)));
  return replies.map((r, n) => {
    if (!r.ok || !r.sample) throw new Error(`instance ${instances[n]!.name}: ${r.error}`);
    return r.sample;
  });
}

/** Servers first (their side keeps the TIME_WAIT), then the load clients, then Redis. */
async function stopEverything(): Promise<void> {
  for (const i of instances) i.proc.kill('SIGKILL');
  await Promise.race([Promise.all(instances.map((i) => i.proc.exited)), Bun.sleep(3_000)]);
  for (const c of clients) c.proc.kill('SIGKILL');
  await Promise.race([Promise.all(clients.map((c) => c.proc.exited)), Bun.sleep(3_000)]);
  await stopAll();
}

// ------------------------------------------------------------------ HTTP

interface IAnswer {
  status: number;
  ms: number;
  bytes: number;
  text: string;
}

async function request(url: string, init: RequestInit = {}): Promise<IAnswer> {
  const started = performance.now();
  const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
  const body = new Uint8Array(await res.arrayBuffer());
  const ms = performance.now() - started;
  return { status: res.status, ms, bytes: body.byteLength, text: new TextDecoder().decode(body) };
}

type TVia = 'admin' | 'api';

/** Requests to instance A as the page makes them (`admin`), or as a back end calls the API (`api`). */
class Caller {
  constructor(
    private readonly base: string,
    private readonly cookie: string,
  ) {}

  read(via: TVia, path: string): Promise<IAnswer> {
    return via === 'admin'
      ? request(`${this.base}/admin/api${path}`, { headers: { cookie: this.cookie } })
      : request(`${this.base}/api${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
  }

  /** An action as the page sends it: same origin (no Origin header here), the admin header, JSON. */
  act(path: string, body: unknown): Promise<IAnswer> {
    return request(`${this.base}/admin/api${path}`, {
      method: 'POST',
      headers: { cookie: this.cookie, 'x-roomcast-admin': '1', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async json<T>(via: TVia, path: string): Promise<T> {
    const answer = await this.read(via, path);
    if (answer.status !== 200)
      throw new Error(`GET ${path}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
    return JSON.parse(answer.text) as T;
  }
}

async function signIn(base: string): Promise<string> {
  const answer = await fetch(`${base}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key: ADMIN_KEY }).toString(),
  });
  const cookie = answer.headers.get('set-cookie');
  if (answer.status !== 303 || !cookie) throw new Error(`admin sign-in: HTTP ${answer.status}`);
  return cookie.split(';')[0]!;
}

// ------------------------------------------------------------------ figures

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface IReadRow {
  what: string;
  via: TVia | 'page';
  n: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  bytes: number;
  /** Instance A's CPU (user + system) per request, µs: the instance that serves the page. */
  cpuAUs: number;
  /** The other instances' CPU per request, µs (answering a connection lookup, for instance). */
  cpuOthersUs: number;
  redisUs: number;
}

async function timed(
  what: string,
  via: TVia | 'page',
  run: () => Promise<{ ms: number; bytes: number; ok: boolean }>,
  count: number,
): Promise<IReadRow> {
  const ms: number[] = [];
  let bytes = 0;
  let errors = 0;
  await sampleAll();
  const redisBefore = redisCpuUs(redisPort);
  for (let n = 0; n < count; n++) {
    const started = performance.now();
    const result = await run();
    ms.push(result.ms);
    bytes = Math.max(bytes, result.bytes);
    if (!result.ok) errors++;
    const rest = PACE_MS * (via === 'page' ? 3 : 1) - (performance.now() - started);
    if (rest > 0) await Bun.sleep(rest);
  }
  const redisAfter = redisCpuUs(redisPort);
  const cpu = (await sampleAll()).map((s) => s.userUs + s.systemUs);
  ms.sort((a, b) => a - b);
  const others = cpu.slice(1).reduce((a, b) => a + b, 0);
  return {
    what,
    via,
    n: count,
    errors,
    p50: quantile(ms, 0.5),
    p99: quantile(ms, 0.99),
    max: ms[ms.length - 1]!,
    bytes,
    cpuAUs: cpu[0]! / count,
    cpuOthersUs: others / count,
    redisUs: (redisAfter - redisBefore) / count,
  };
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

function machineLine(): string {
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Bun ${Bun.version}, ${os.platform()} ${os.release()}, load average ${load}`;
}

// ------------------------------------------------------------------ the run

let redisPort = 0;

async function main(): Promise<number> {
  const softLimit = Number(Bun.spawnSync(['sh', '-c', 'ulimit -n']).stdout.toString().trim()) || 1024;
  const hardLimit = fileLimit();
  let connections = Math.floor(requested);
  const perInstanceMax = softLimit - SERVER_RESERVE;
  const notes: string[] = [];
  if (Math.ceil(connections / instanceCount) > perInstanceMax) {
    connections = perInstanceMax * instanceCount;
    notes.push(
      `asked for ${int(requested)} connections; an instance may open ${softLimit} files here (ulimit -n; hard ${hardLimit}), so ${int(connections)} are opened (${int(perInstanceMax)} per instance)`,
    );
  }
  const clientProcesses = Math.max(2, Math.ceil(connections / SOCKETS_PER_CLIENT_PROCESS));
  const date = new Date().toISOString();
  const machineBefore = machineLine();
  log(`machine: ${machineBefore}`);

  const redis = await startRedis();
  redisPort = redis.port;
  for (let n = 0; n < instanceCount; n++) {
    instances.push(await startInstance(String.fromCharCode(65 + n), redis.port));
  }
  const ports = instances.map((i) => i.port);
  const base = `http://127.0.0.1:${ports[0]}`;
  for (let p = 0; p < clientProcesses; p++) {
    clients.push(
      await spawnCommandProcess<TCapacityCommand, ICapacityReply>(
        `load client ${p}`,
        new URL('../capacity/client.ts', import.meta.url).pathname,
        (error) => ({ ok: false, error }),
      ),
    );
  }

  // Connect: socket i of process p goes to ports[i % instances] and joins plan[i % plan.length].
  const plan = roomPlan();
  log(
    `connecting ${int(connections)} clients to ${instanceCount} instances from ${clientProcesses} processes`,
  );
  const connectStarted = performance.now();
  const connects = await Promise.all(
    clients.map((c, p) =>
      c.call(
        {
          cmd: 'connect',
          ports,
          count: Math.floor(connections / clientProcesses) + (p < connections % clientProcesses ? 1 : 0),
          localAddresses: [`127.0.0.${80 + 2 * p}`, `127.0.0.${81 + 2 * p}`],
          concurrency,
          tag: String(p),
          room: 'huge',
          rooms: plan,
        },
        Math.max(10_000, deadlineMs - (Date.now() - t0) - 60_000),
      ),
    ),
  );
  const connectMs = performance.now() - connectStarted;
  const connected = connects.reduce((n, r) => n + (r.connected ?? 0), 0);
  const failed = connects.reduce((n, r) => n + (r.failed ?? 0), 0);
  const firstError = connects.find((r) => !r.ok)?.error;
  log(
    `${int(connected)} connected, ${failed} failed, in ${fmt(connectMs / 1000)} s${firstError ? ` (first error: ${firstError})` : ''}`,
  );

  const admin = new Caller(base, await signIn(base));

  // Wait for the fleet records (every 5 s by default) and the presence writes to show every connection.
  interface IFleetAnswer {
    totals: { connections: number; authenticated: number; instances: number };
    instances: Array<{ identifier: string; authenticated: number }>;
  }
  interface IStats {
    clients: number;
    users: number;
  }
  let fleet = await admin.json<IFleetAnswer>('api', '/instances');
  let huge = await admin.json<IStats>('api', '/presence/stats?room=huge');
  const settleBy = Date.now() + 20_000;
  for (;;) {
    const previous = huge.clients;
    await Bun.sleep(1_000);
    fleet = await admin.json<IFleetAnswer>('api', '/instances');
    huge = await admin.json<IStats>('api', '/presence/stats?room=huge');
    const settled =
      fleet.totals.instances === instanceCount &&
      fleet.totals.authenticated === connected &&
      huge.clients === previous;
    if (settled || Date.now() > settleBy) break;
  }
  const heldBy = fleet.instances.map((i) => `${i.identifier} ${int(i.authenticated)}`).join(', ');
  log(
    `fleet: ${int(fleet.totals.authenticated)} authenticated (${heldBy}); huge room: ${int(huge.clients)} present`,
  );
  const roomSizes = {
    huge: huge.clients,
    medium: (await admin.json<IStats>('api', '/presence/stats?room=medium-0')).clients,
    small: (await admin.json<IStats>('api', '/presence/stats?room=small-0')).clients,
  };

  // History: 30 publications in huge, medium-0 and small-0, so the page's history read has its 20 to show.
  for (const room of ['huge', 'medium-0', 'small-0']) {
    for (let n = 0; n < 30; n++) {
      const answer = await request(`${base}/api/publish/room`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ room, event: 'probe', data: { n, text: 'x'.repeat(64) } }),
      });
      if (answer.status !== 200) throw new Error(`seeding history: HTTP ${answer.status} ${answer.text}`);
    }
  }

  // Targets: members of small rooms (one for the lookups, another to disconnect).
  interface IMembers {
    total: number;
    members: Array<{ clientId: string; userId?: string }>;
  }
  const lookup = (await admin.json<IMembers>('api', '/presence?room=small-1&limit=5')).members[0];
  const victim = (await admin.json<IMembers>('api', '/presence?room=small-2&limit=5')).members[0];
  if (!lookup?.userId || !victim) throw new Error('no member found in small-1 / small-2');

  const q = encodeURIComponent;
  const reads: Array<[string, string]> = [
    ['fleet (`/instances`)', '/instances'],
    [`largest rooms (\`/rooms/top?limit=${TOP_ROOMS}\`)`, `/rooms/top?limit=${TOP_ROOMS}`],
    [`huge room members (limit ${MEMBERS_PAGE})`, `/presence?room=huge&limit=${MEMBERS_PAGE}`],
    [`huge room members (limit ${MEMBERS_MAX}, the page's most)`, `/presence?room=huge&limit=${MEMBERS_MAX}`],
    ['huge room presence stats', '/presence/stats?room=huge'],
    [`medium room members (limit ${MEMBERS_PAGE})`, `/presence?room=medium-0&limit=${MEMBERS_PAGE}`],
    [`small room members (limit ${MEMBERS_PAGE})`, `/presence?room=small-0&limit=${MEMBERS_PAGE}`],
    ['small room presence stats', '/presence/stats?room=small-0'],
    [
      `recent history (medium room, ${HISTORY_SHOWN})`,
      `/history?room=medium-0&limit=${HISTORY_SHOWN}&reverse=true`,
    ],
    ["a client's connections", `/connections?clientId=${q(lookup.clientId)}`],
    ["a user's connections", `/connections?userId=${q(lookup.userId)}`],
  ];
  const rows: IReadRow[] = [];
  for (const via of ['admin', 'api'] as const) {
    for (const [what, path] of reads) {
      const row = await timed(
        what,
        via,
        async () => {
          const answer = await admin.read(via, path);
          return { ms: answer.ms, bytes: answer.bytes, ok: answer.status === 200 };
        },
        reps,
      );
      rows.push(row);
      log(`${via} ${what}: p50 ${fmt(row.p50)} p99 ${fmt(row.p99)} max ${fmt(row.max)} ms, ${row.bytes} B`);
    }
  }

  // The page's refreshes as it makes them: its requests in parallel, until the last answer.
  const parallel = async (paths: string[]) => {
    const started = performance.now();
    const answers = await Promise.all(paths.map((path) => admin.read('admin', path)));
    return {
      ms: performance.now() - started,
      bytes: answers.reduce((n, a) => n + a.bytes, 0),
      ok: answers.every((a) => a.status === 200),
    };
  };
  const fleetRefresh = ['/instances', `/rooms/top?limit=${TOP_ROOMS}`];
  const roomRefresh = (room: string) => [
    `/presence/stats?room=${room}`,
    `/presence?room=${room}&limit=${MEMBERS_PAGE}`,
    `/history?room=${room}&limit=${HISTORY_SHOWN}&reverse=true`,
  ];
  const pageRows: IReadRow[] = [];
  for (const [what, paths] of [
    ['fleet view refresh (2 requests)', fleetRefresh],
    ['room view refresh, huge room (3 requests)', roomRefresh('huge')],
    ['room view refresh, medium room (3 requests)', roomRefresh('medium-0')],
    ['room view refresh, small room (3 requests)', roomRefresh('small-0')],
  ] as const) {
    const row = await timed(what, 'page', () => parallel([...paths]), reps);
    pageRows.push(row);
    log(`page ${what}: p50 ${fmt(row.p50)} p99 ${fmt(row.p99)} max ${fmt(row.max)} ms, ${row.bytes} B`);
  }

  // One of each action the page offers, as it sends them.
  const actions: Array<{ what: string; status: number; ms: number; answer: string }> = [];
  const act = async (what: string, path: string, body: unknown) => {
    const answer = await admin.act(path, body);
    actions.push({ what, status: answer.status, ms: answer.ms, answer: answer.text.slice(0, 120) });
    log(`action ${what}: HTTP ${answer.status} in ${fmt(answer.ms)} ms ${answer.text.slice(0, 120)}`);
    await Bun.sleep(600); // under the operator's action rate (2 a second)
  };
  await act('publish a test message (medium room, history)', '/publish/room', {
    room: 'medium-0',
    event: 'probe-test',
    data: { text: 'hello from the admin probe' },
  });
  await act("join (a user's connections into a room)", '/join', {
    userId: lookup.userId,
    rooms: ['probe-extra'],
  });
  await act("leave (a user's connections out of it)", '/leave', {
    userId: lookup.userId,
    rooms: ['probe-extra'],
  });
  await act('disconnect a client', '/disconnect', {
    clientId: victim.clientId,
    reason: 'Disconnected by an operator',
  });
  await act('remove history (small room)', '/history/remove', { room: 'small-0' });

  // The instances while nobody looks, and while the page refreshes at its default interval with
  // the huge room and a client's connections open (fleet every 2 s; room and lookup every 4 s).
  interface IWindow {
    phase: 'idle' | 'page';
    samples: IAdminScaleSample[];
    redisUs: number;
    requests: number;
    wallMs: number;
  }
  const windows: IWindow[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const phase of ['idle', 'page'] as const) {
      await sampleAll();
      const redisBefore = redisCpuUs(redisPort);
      const started = performance.now();
      const ends = started + windowMs;
      let requests = 0;
      const poll = async (paths: string[], every: number) => {
        while (performance.now() < ends) {
          await parallel(paths);
          requests += paths.length;
          await Bun.sleep(Math.max(0, Math.min(every, ends - performance.now())));
        }
      };
      if (phase === 'page') {
        await Promise.all([
          poll(fleetRefresh, REFRESH_MS),
          poll(roomRefresh('huge'), REFRESH_MS * 2),
          poll([`/connections?clientId=${q(lookup.clientId)}`], REFRESH_MS * 2),
        ]);
      }
      const rest = ends - performance.now();
      if (rest > 0) await Bun.sleep(rest);
      const samples = await sampleAll();
      windows.push({
        phase,
        samples,
        redisUs: redisCpuUs(redisPort) - redisBefore,
        requests,
        wallMs: performance.now() - started,
      });
      const cpu = samples
        .map((s) => `${fmt(((s.userUs + s.systemUs) / 1000 / s.wallMs) * 100)} %`)
        .join(' / ');
      log(`window ${r + 1} ${phase}: CPU ${cpu}, ${requests} admin requests`);
    }
  }

  // ------------------------------------------------------------------ report
  const out: string[] = [];
  out.push(`## Admin scale probe, ${date}`, '');
  out.push(
    `\`bun run bench/probes/admin-scale.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
    '',
  );
  out.push(`- machine: ${machineBefore} (at start); ${machineLine()} (at the end)`);
  out.push(`- open-file limit: ${softLimit} (hard ${hardLimit})`);
  for (const note of notes) out.push(`- NOTE: ${note}`);
  out.push(
    `- connections: ${int(connected)} of ${int(connections)} held (${failed} failed${firstError ? `, first error: ${firstError}` : ''}), over ${instanceCount} instances (${heldBy}) from ${clientProcesses} load-client processes, connected in ${fmt(connectMs / 1000)} s`,
  );
  out.push(
    `- rooms (presence): huge ${int(roomSizes.huge)} members, medium-0 ${int(roomSizes.medium)} (10 such), small-0 ${int(roomSizes.small)} (500 such); history in huge, medium-* and small-0`,
  );
  out.push(
    `- reads: ${reps} each, one after the other, at most one every ${PACE_MS} ms (the page's refreshes: every ${PACE_MS * 3} ms); latency measured at the caller (loopback HTTP, the probe shares the cores); CPU per request from process.cpuUsage() / Redis INFO cpu over the series`,
    '',
  );
  out.push(
    '| read | via | n | p50 ms | p99 ms | max ms | answer B | instance A CPU µs/req | other instances µs/req | Redis µs/req |',
  );
  out.push('| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |');
  for (const row of [...rows, ...pageRows]) {
    out.push(
      `| ${row.what}${row.errors > 0 ? ` (${row.errors} errors)` : ''} | ${row.via} | ${row.n} | ${fmt(row.p50)} | ${fmt(row.p99)} | ${fmt(row.max)} | ${int(row.bytes)} | ${int(row.cpuAUs)} | ${int(row.cpuOthersUs)} | ${int(row.redisUs)} |`,
    );
  }
  out.push('', '| action (once, through the admin gate) | HTTP | ms | answer |', '| --- | --: | --: | --- |');
  for (const a of actions) {
    out.push(`| ${a.what} | ${a.status} | ${fmt(a.ms)} | \`${a.answer.replaceAll('|', '\\|')}\` |`);
  }
  const perPhase = (phase: 'idle' | 'page') => windows.filter((w) => w.phase === phase);
  out.push(
    '',
    `Instances while idle and while the page refreshes (huge room and a client lookup open; ${rounds} windows of ${fmt(windowMs / 1000, 0)} s each, alternating; CPU as % of one core, mean over the windows; event-loop delay of a 10 ms timer, worst window):`,
    '',
  );
  out.push(
    `| phase | admin requests / s | ${instances.map((i) => `instance ${i.name} CPU %`).join(' | ')} | ${instances.map((i) => `${i.name} loop delay p99 / max ms`).join(' | ')} | Redis CPU % |`,
  );
  out.push(
    `| --- | --: | ${instances.map(() => '--:').join(' | ')} | ${instances.map(() => '--:').join(' | ')} | --: |`,
  );
  for (const phase of ['idle', 'page'] as const) {
    const list = perPhase(phase);
    const wall = list.reduce((n, w) => n + w.wallMs, 0);
    const cpu = instances.map(
      (_, n) =>
        (list.reduce((sum, w) => sum + w.samples[n]!.userUs + w.samples[n]!.systemUs, 0) / 1000 / wall) * 100,
    );
    const lag = instances.map((_, n) => {
      const p99 = Math.max(...list.map((w) => w.samples[n]!.lagP99Ms));
      const max = Math.max(...list.map((w) => w.samples[n]!.lagMaxMs));
      return `${fmt(p99)} / ${fmt(max)}`;
    });
    const redisShare = (list.reduce((n, w) => n + w.redisUs, 0) / 1000 / wall) * 100;
    const rate = list.reduce((n, w) => n + w.requests, 0) / (wall / 1000);
    out.push(
      `| ${phase} | ${fmt(rate)} | ${cpu.map((c) => fmt(c, 2)).join(' | ')} | ${lag.join(' | ')} | ${fmt(redisShare, 2)} |`,
    );
  }
  out.push('', 'Per window (CPU % of one core per instance):', '');
  for (const [n, w] of windows.entries()) {
    out.push(
      `- ${Math.floor(n / 2) + 1} ${w.phase}: ${w.samples.map((s) => fmt(((s.userUs + s.systemUs) / 1000 / s.wallMs) * 100, 2)).join(' / ')}; Redis ${fmt((w.redisUs / 1000 / w.wallMs) * 100, 2)}; ${w.requests} requests; RSS ${w.samples.map((s) => `${fmt(s.rssBytes / 2 ** 20, 0)} MiB`).join(' / ')}`,
    );
  }
  console.log(out.join('\n'));
  const clean = failed === 0 && connected === connections && rows.every((r) => r.errors === 0);
  const acted = actions.every((a) => a.status === 200);
  if (!clean || !acted) console.log('\nNOT CLEAN: some connection, read or action failed (see above).');
  return clean && acted ? 0 : 1;
}

const hardDeadline = setTimeout(() => {
  console.log(`FAILED: gave up after ${deadlineMs / 1000} s (--deadline-s)`);
  killAll();
  process.exit(2);
}, deadlineMs);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  clearTimeout(hardDeadline);
  await stopEverything();
}
process.exit(code);
