// The send-throughput phase of the benchmark (issue 20, point 2): how many messages a second one
// instance's `send()` gets to a client on another instance, against what one ioredis connection
// gets through the same Redis, the same receiving instance and the same client (the floor).
//
// Processes (all children of the orchestrator; this file is each of them, by its first argument):
//   receiver  instance B: a WebSocketServerHelper over the phase's redis-server, `historyFn`
//             keeping history for HISTORY_ROOM; holds the one client.
//   client    one Bun WebSocket client of B in PLAIN_ROOM and HISTORY_ROOM; counts each run's
//             messages (in order, none missing) and the time the last one arrived.
//   sender    spawned afresh for every run (nothing of another run's kind runs beside it), one of:
//     send             instance A (a WebSocketServerHelper, same options as B) calling
//                      `send({ destination: PLAIN_ROOM })`
//     send-history     instance A calling `send({ destination: HISTORY_ROOM })` (the publish script)
//     emitter          a WebSocketEmitter calling `toRoom(PLAIN_ROOM)` (the script in checked mode)
//     floor-publish    one ioredis connection, `enableAutoPipelining`, PUBLISHing the envelope A
//                      would publish for the same message
//     floor-evalsha    the same connection running the history publish script by EVALSHA with the
//                      arguments A would give it (mode `p`, HISTORY_ROOM)
//     floor-checked    the same script in checked mode (mode `c`, PLAIN_ROOM), as the emitter runs it
// Throughput: a run's messages divided by the time from the sender's first call to the client's
// receipt of the last (clocks of one machine: `performance.timeOrigin + now()`). The sender calls
// `chunk` times per macrotask, as fast as it can; kinds alternate, `reps` times. The paced runs send
// one message every `pacedIntervalMs` and the client records each one's latency.

import type { Redis } from 'ioredis';
import { encodeEnvelope } from '../../src/bus/envelope.ts';
import { WebSocketMessageTypes } from '../../src/common/constants.ts';
import { historyKeys } from '../../src/history/keys.ts';
import { PUBLISH_SCRIPT } from '../../src/history/redis-scripts.ts';
import { EVENT, makeData, nowMs } from '../lib/shared.ts';

export type TSendKind =
  | 'send'
  | 'send-history'
  | 'emitter'
  | 'floor-publish'
  | 'floor-evalsha'
  | 'floor-checked'
  /** `send` and `send-history` from another source tree (`--send-baseline DIR`: the code before a change). */
  | 'send-baseline'
  | 'send-history-baseline';

export const SEND_KINDS: readonly TSendKind[] = [
  'floor-publish',
  'send',
  'floor-evalsha',
  'send-history',
  'floor-checked',
  'emitter',
];
/** The same with the baseline tree's `send()` right after this tree's (`--send-baseline DIR`). */
export const SEND_KINDS_WITH_BASELINE: readonly TSendKind[] = [
  'floor-publish',
  'send',
  'send-baseline',
  'floor-evalsha',
  'send-history',
  'send-history-baseline',
  'floor-checked',
  'emitter',
];
/** The kinds of the paced (low load) runs. */
export const PACED_KINDS: readonly TSendKind[] = [
  'floor-publish',
  'send',
  'send-baseline',
  'floor-evalsha',
  'send-history',
  'send-history-baseline',
];

export interface ISendThroughputSettings {
  redisPort: number;
  /** Messages per throughput run. */
  messages: number;
  /** Calls per macrotask. */
  chunk: number;
  /** Serialized size of each message's `data`. */
  size: number;
  reps: number;
  pacedMessages: number;
  pacedIntervalMs: number;
  kinds: readonly TSendKind[];
  /** A `src/` directory of another tree: adds the kinds `send-baseline` and `send-history-baseline`. */
  baseline?: string;
}

export const SEND_THROUGHPUT_SETTINGS: Omit<ISendThroughputSettings, 'redisPort'> = {
  messages: 100_000,
  chunk: 500,
  size: 64,
  reps: 3,
  pacedMessages: 1_000,
  pacedIntervalMs: 2,
  kinds: SEND_KINDS,
};

export interface ISendRun {
  kind: TSendKind;
  rep: number;
  /** Messages a second, first call to the last receipt; undefined when the run failed. */
  perSecond?: number;
  /** The sender's calls alone (first to last call), a second. */
  callsPerSecond?: number;
  /** Messages the sender reported dropped (its own counters). */
  dropped: number;
  /** The sender process's CPU time per message (µs), first call until Redis answered the last. */
  senderCpuUs?: number;
  error?: string;
}

export interface IPacedRun {
  kind: TSendKind;
  rep: number;
  p50Ms?: number;
  p99Ms?: number;
  error?: string;
}

export interface ISendThroughputResult {
  settings: Omit<ISendThroughputSettings, 'redisPort'>;
  runs: ISendRun[];
  paced: IPacedRun[];
}

/** The targets (issue 20): each sender at this fraction of its floor or better. */
export const SEND_FLOOR_TARGET = 0.7;
/** Paced p99 of `send()` over the floor's, at most this (the issue's 10 % over the state before). */
export const PACED_P99_LIMIT = 1.1;

const HISTORY_KINDS: readonly TSendKind[] = ['send-history', 'send-history-baseline', 'floor-evalsha'];
const PLAIN_ROOM = 'bench-send';
const HISTORY_ROOM = 'bench-send-history';
const HISTORY_POLICY = { size: 1_000, ttl: 600_000, metaTtl: 600_000 };
const SELF = new URL(import.meta.url).pathname;
const RUN_TIMEOUT_MS = 60_000;
/**
 * The most messages a sender lets wait for Redis before it pauses (every sender alike): a sender
 * faster than Redis would otherwise only pile up commands until they time out (`redisCommandTimeout`).
 * `send()` reads the bus's own gauge (`getStats().bus.publishQueueMessages`), as an application can.
 */
const WINDOW = 5_000;

// ------------------------------------------------------------------ orchestrator side

interface IChild {
  proc: ReturnType<typeof Bun.spawn>;
  send(message: unknown): void;
  next(): Promise<Record<string, unknown>>;
}

function profileArgs(name: string): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  return dir
    ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`]
    : [];
}

/** A child of this file in `role`, talking over Bun IPC; its first message is its readiness. */
function spawnRole(role: string, args: Record<string, unknown>): IChild {
  const inbox: Array<Record<string, unknown>> = [];
  const waiters: Array<(m: Record<string, unknown>) => void> = [];
  const proc = Bun.spawn([process.execPath, ...profileArgs(role), SELF, role, JSON.stringify(args)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, BENCH_PARENT_PID: String(process.pid) },
    ipc(message) {
      const waiter = waiters.shift();
      if (waiter) waiter(message as Record<string, unknown>);
      else inbox.push(message as Record<string, unknown>);
    },
  });
  void proc.exited.then((code) => {
    for (const waiter of waiters.splice(0)) waiter({ ok: false, error: `${role} exited ${code}` });
  });
  return {
    proc,
    send: (message) => proc.send(message),
    next: () => {
      const queued = inbox.shift();
      if (queued) return Promise.resolve(queued);
      if (proc.exitCode !== null) return Promise.resolve({ ok: false, error: `${role} exited` });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${role}: no answer in ${RUN_TIMEOUT_MS} ms`)),
          RUN_TIMEOUT_MS,
        );
        waiters.push((m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
    },
  };
}

async function ready(child: IChild, what: string): Promise<Record<string, unknown>> {
  const first = await child.next();
  if (first.ok !== true) throw new Error(`${what} did not start: ${String(first.error)}`);
  return first;
}

async function stopChild(child: IChild): Promise<void> {
  try {
    child.send({ cmd: 'exit' });
  } catch {
    // gone already
  }
  await Promise.race([child.proc.exited, Bun.sleep(3_000)]);
  child.proc.kill('SIGKILL');
}

/** Runs the phase: B and its client for the whole phase, a fresh sender for every run. */
export async function sendThroughputPhase(
  settings: ISendThroughputSettings,
  log: (line: string) => void = console.log,
): Promise<ISendThroughputResult> {
  const receiver = spawnRole('receiver', { redisPort: settings.redisPort });
  const children: IChild[] = [receiver];
  try {
    const { port, path } = await ready(receiver, 'receiver');
    const client = spawnRole('client', { port, path });
    children.push(client);
    await ready(client, 'client');
    const runs: ISendRun[] = [];
    const paced: IPacedRun[] = [];
    for (let rep = 0; rep < settings.reps; rep++) {
      for (const kind of settings.kinds) {
        const run = await oneRun(settings, client, kind, rep, settings.messages, 0);
        runs.push(run);
        log(
          `send ${kind} rep ${rep + 1}: ${run.perSecond ? `${fmt(run.perSecond)} msg/s, sender CPU ${run.senderCpuUs?.toFixed(2)} µs/msg` : `FAILED ${run.error}`}${run.dropped ? `, ${run.dropped} dropped` : ''}`,
        );
      }
    }
    // Paced runs alternate too: one p99 of 1 000 samples is the tenth worst, so it takes several.
    for (let rep = 0; rep < settings.reps; rep++) {
      for (const kind of settings.kinds.filter((k) => PACED_KINDS.includes(k))) {
        const run = await oneRun(
          settings,
          client,
          kind,
          rep,
          settings.pacedMessages,
          settings.pacedIntervalMs,
        );
        const result: IPacedRun = { kind, rep };
        if (run.error) result.error = run.error;
        else Object.assign(result, run.latency);
        paced.push(result);
        log(
          `send ${kind} paced rep ${rep + 1}: ${result.error ? `FAILED ${result.error}` : `p50 ${result.p50Ms?.toFixed(3)} ms, p99 ${result.p99Ms?.toFixed(3)} ms`}`,
        );
      }
    }
    const { redisPort: _port, ...rest } = settings;
    return { settings: rest, runs, paced };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

async function oneRun(
  settings: ISendThroughputSettings,
  client: IChild,
  kind: TSendKind,
  rep: number,
  messages: number,
  intervalMs: number,
): Promise<ISendRun & { latency?: { p50Ms: number; p99Ms: number } }> {
  const sender = spawnRole('sender', { redisPort: settings.redisPort, kind, baseline: settings.baseline });
  try {
    await ready(sender, `sender ${kind}`);
    const room = HISTORY_KINDS.includes(kind) ? HISTORY_ROOM : PLAIN_ROOM;
    client.send({ cmd: 'expect', room, count: messages, latency: intervalMs > 0 });
    const armed = await client.next();
    if (armed.ok !== true) return { kind, rep, dropped: 0, error: String(armed.error) };
    sender.send({ cmd: 'go', messages, chunk: settings.chunk, size: settings.size, intervalMs });
    const sent = await sender.next();
    const got = await client.next();
    const dropped = Number(sent.dropped ?? 0);
    if (sent.ok !== true) return { kind, rep, dropped, error: String(sent.error) };
    if (got.ok !== true) return { kind, rep, dropped, error: String(got.error) };
    const first = Number(sent.firstAt);
    const run: ISendRun & { latency?: { p50Ms: number; p99Ms: number } } = {
      kind,
      rep,
      dropped,
      perSecond: (messages * 1_000) / (Number(got.lastAt) - first),
      callsPerSecond: (messages * 1_000) / Math.max(0.001, Number(sent.lastCallAt) - first),
      senderCpuUs: Number(sent.cpuUs) / messages,
    };
    if (got.p50Ms !== undefined) run.latency = { p50Ms: Number(got.p50Ms), p99Ms: Number(got.p99Ms) };
    return run;
  } catch (error) {
    return { kind, rep, dropped: 0, error: error instanceof Error ? error.message : String(error) };
  } finally {
    await stopChild(sender);
  }
}

// ------------------------------------------------------------------ report

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function ratesOf(result: ISendThroughputResult, kind: TSendKind): number[] {
  return result.runs.filter((r) => r.kind === kind && r.perSecond !== undefined).map((r) => r.perSecond!);
}

/** Rep n of `over` against rep n of `under` (they ran one after the other). */
function repRatios(result: ISendThroughputResult, over: TSendKind, under: TSendKind): number[] {
  const ratios: number[] = [];
  for (let rep = 0; rep < result.settings.reps; rep++) {
    const a = result.runs.find((r) => r.kind === over && r.rep === rep)?.perSecond;
    const b = result.runs.find((r) => r.kind === under && r.rep === rep)?.perSecond;
    if (a !== undefined && b !== undefined) ratios.push(a / b);
  }
  return ratios;
}

/** Paced p99 of rep n of `over` against rep n of `under`. */
function pacedRatios(result: ISendThroughputResult, over: TSendKind, under: TSendKind): number[] {
  const ratios: number[] = [];
  for (let rep = 0; rep < result.settings.reps; rep++) {
    const a = result.paced.find((p) => p.kind === over && p.rep === rep)?.p99Ms;
    const b = result.paced.find((p) => p.kind === under && p.rep === rep)?.p99Ms;
    if (a !== undefined && b !== undefined) ratios.push(a / b);
  }
  return ratios;
}

/** The comparisons the phase reports: [sender, floor, what]. */
const COMPARISONS: Array<[TSendKind, TSendKind, string]> = [
  ['send', 'floor-publish', '`send()` to a room vs pipelined `PUBLISH`'],
  [
    'send-history',
    'floor-evalsha',
    '`send()` to a history room vs pipelined `EVALSHA` of the publish script',
  ],
  ['emitter', 'floor-checked', 'emitter `toRoom()` vs pipelined `EVALSHA` of the script in checked mode'],
  ['emitter', 'floor-publish', 'emitter `toRoom()` vs pipelined `PUBLISH`'],
  ['send', 'send-baseline', '`send()` vs the baseline tree'],
  ['send-history', 'send-history-baseline', 'history `send()` vs the baseline tree'],
];

export interface ISendVerdict {
  what: string;
  ratio: number;
  limit: string;
  holds: boolean;
}

/** Each target's median ratio and verdict. */
export function sendVerdicts(result: ISendThroughputResult): ISendVerdict[] {
  const verdicts: ISendVerdict[] = [];
  for (const [over, under, what] of COMPARISONS.slice(0, 3)) {
    const ratios = repRatios(result, over, under);
    if (ratios.length === 0) continue;
    const ratio = median(ratios);
    verdicts.push({ what, ratio, limit: `>= ${SEND_FLOOR_TARGET}×`, holds: ratio >= SEND_FLOOR_TARGET });
  }
  for (const [over, under, what, target] of [
    ['send', 'send-baseline', 'paced p99, `send()` / the baseline tree', true],
    ['send-history', 'send-history-baseline', 'paced p99, history `send()` / the baseline tree', true],
    ['send', 'floor-publish', 'paced p99, `send()` / `PUBLISH`', false],
    ['send-history', 'floor-evalsha', 'paced p99, history `send()` / `EVALSHA`', false],
  ] as const) {
    const ratios = pacedRatios(result, over, under);
    if (ratios.length === 0) continue;
    const ratio = median(ratios);
    verdicts.push({
      what: `${what} (median of the reps' ratios)`,
      ratio,
      limit: target ? `<= ${PACED_P99_LIMIT}×` : '—',
      holds: !target || ratio <= PACED_P99_LIMIT,
    });
  }
  return verdicts;
}

/** The section of docs/benchmarks.md (rendered by bench/lib/report.ts). */
export function sendThroughputSection(result: ISendThroughputResult): string[] {
  const s = result.settings;
  const row = (kind: TSendKind, what: string) => {
    const rates = ratesOf(result, kind);
    const failed = result.runs.filter((r) => r.kind === kind && r.error).length;
    const drops = result.runs.filter((r) => r.kind === kind).reduce((n, r) => n + r.dropped, 0);
    const cpu = result.runs
      .filter((r) => r.kind === kind && r.senderCpuUs !== undefined)
      .map((r) => r.senderCpuUs!);
    return `| ${what} | ${rates.length ? `${fmt(median(rates))} /s <br><sub>reps ${rates.map(fmt).join(', ')}</sub>` : 'FAILED'}${failed ? ` (${failed} failed)` : ''}${drops ? ` (${drops} dropped)` : ''} | ${cpu.length ? `${median(cpu).toFixed(2)} µs` : '—'} |`;
  };
  const lines = [
    '## Cross-instance `send()` throughput',
    '',
    `Instance A sends ${fmt(s.messages)} messages of ${s.size} B to a room, ${s.chunk} calls per macrotask, as fast as it can; one client of instance B is in the room. A figure is the messages divided by the time from A's first call to the client's receipt of the last (every message received, in order). Each sender is a fresh process; the floors are one ioredis connection with \`enableAutoPipelining\` sending what A would send, through the same Redis, instance B and client. Kinds alternate, ${s.reps} repetitions (\`bench/phases/send-throughput.ts\`).`,
    '',
    '| Sender | Messages a second (median) | Sender CPU per message (median) |',
    '| --- | --- | --- |',
    row('floor-publish', 'floor: pipelined `PUBLISH` of the envelope'),
    row('send', '`send({ destination: room })`'),
    row('floor-evalsha', 'floor: pipelined `EVALSHA` of the history publish script'),
    row('send-history', '`send()` to a history room'),
    row('floor-checked', 'floor: pipelined `EVALSHA` of the script in checked mode (a room without history)'),
    row('emitter', 'emitter `toRoom()` (a room without history)'),
    ...(s.baseline
      ? [
          row('send-baseline', '`send()`, baseline tree'),
          row('send-history-baseline', '`send()` to a history room, baseline tree'),
        ]
      : []),
    '',
    `Paced, ${fmt(s.pacedMessages)} messages one every ${s.pacedIntervalMs} ms, latency from the call to the client's receipt:`,
    '',
    '| Sender | p50 (median of the reps) | p99 (median of the reps) |',
    '| --- | --- | --- |',
  ];
  for (const kind of PACED_KINDS) {
    const reps = result.paced.filter((p) => p.kind === kind);
    if (reps.length === 0) continue;
    const ok = reps.filter((p) => p.p99Ms !== undefined);
    const failed = reps.length - ok.length;
    const at = (pick: (p: IPacedRun) => number) =>
      `${median(ok.map(pick)).toFixed(3)} ms <br><sub>reps ${ok.map((p) => pick(p).toFixed(2)).join(', ')}</sub>`;
    lines.push(
      ok.length === 0
        ? `| ${kind} | FAILED | ${reps[0]?.error ?? ''} |`
        : `| ${kind} | ${at((p) => p.p50Ms!)} | ${at((p) => p.p99Ms!)}${failed ? ` (${failed} failed)` : ''} |`,
    );
  }
  lines.push('', '| target | limit | measured | verdict |', '| --- | --- | --- | --- |');
  for (const [over, under, what] of COMPARISONS) {
    const ratios = repRatios(result, over, under);
    if (ratios.length === 0) continue;
    const target = COMPARISONS.findIndex((c) => c[0] === over && c[1] === under) < 3;
    const ratio = median(ratios);
    const spread = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    lines.push(
      `| ${what} (median of the reps' ratios) | ${target ? `>= ${SEND_FLOOR_TARGET}×` : '—'} | ${ratio.toFixed(2)}×<br><sub>reps ${spread}</sub> | ${target ? (ratio >= SEND_FLOOR_TARGET ? 'holds' : '**MISSED**') : 'shown'} |`,
    );
  }
  for (const v of sendVerdicts(result).filter((v) => v.what.startsWith('paced'))) {
    const verdict = v.limit === '—' ? 'shown' : v.holds ? 'holds' : '**MISSED**';
    lines.push(`| ${v.what} | ${v.limit} | ${v.ratio.toFixed(2)}× | ${verdict} |`);
  }
  return lines;
}

// ------------------------------------------------------------------ child side

type TReply = (message: unknown) => void;

function ipcReply(): TReply {
  return (message) => process.send?.(message);
}

/** Exits when the orchestrator is gone. */
function watchParent(): void {
  const parent = Number(process.env.BENCH_PARENT_PID);
  if (!parent) return;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(3);
    }
  }, 1_000).unref();
}

const quiet = () => {};
const logger = {
  debug: quiet,
  info: quiet,
  warn: (...args: unknown[]) => console.error('[send-throughput warn]', ...args),
  error: (...args: unknown[]) => console.error('[send-throughput error]', ...args),
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
};

const historyFn = ({ room }: { room: string }) => (room === HISTORY_ROOM ? HISTORY_POLICY : null);

/** `src` of this tree, or of the baseline tree. */
function sourceDir(baseline?: string): string {
  return baseline ? `${baseline.replace(/\/$/, '')}/` : new URL('../../src/', import.meta.url).pathname;
}

async function startHelper(redisPort: number, withWebSocket: boolean, src = sourceDir()) {
  const { RedisHelper } = (await import(
    `${src}redis/redis-helper.ts`
  )) as typeof import('../../src/redis/redis-helper.ts');
  const { WebSocketServerHelper } = (await import(
    `${src}server/websocket-server-helper.ts`
  )) as typeof import('../../src/server/websocket-server-helper.ts');
  const server = Bun.serve<{ clientId: string }>({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  const helper = new WebSocketServerHelper({
    identifier: 'bench-send',
    server,
    redisConnection: new RedisHelper({
      name: 'bench-send',
      host: '127.0.0.1',
      port: redisPort,
      autoConnect: false,
      logger,
    }),
    logger,
    heartbeatTimeout: 600_000,
    historyFn,
    authenticateFn: (data: { token?: string }) => (data?.token === 'ok' ? {} : null),
    validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
  });
  await helper.configure();
  if (withWebSocket) {
    const path = helper.getPath();
    server.reload({
      fetch(req, srv) {
        if (
          new URL(req.url).pathname === path &&
          srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })
        )
          return undefined;
        return new Response('not found', { status: 404 });
      },
      websocket: helper.getBunWebSocketHandler(),
    });
  }
  return { helper, server };
}

async function receiverRole(args: { redisPort: number }, reply: TReply): Promise<void> {
  const { helper, server } = await startHelper(args.redisPort, true);
  reply({ ok: true, port: server.port, path: helper.getPath() });
}

async function clientRole(args: { port: number; path: string }, reply: TReply): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${args.port}${args.path}`);
  let onFrame: (frame: string) => void = () => {};
  ws.onmessage = (event) => onFrame(String(event.data));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('client: connection failed'));
  });
  const waitFor = (prefix: string) =>
    new Promise<void>((resolve) => {
      onFrame = (frame) => {
        if (frame.startsWith(prefix)) resolve();
      };
    });
  let answered = waitFor('{"event":"connected"');
  ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
  await answered;
  answered = waitFor('{"event":"join"');
  ws.send(JSON.stringify({ event: 'join', data: { rooms: [PLAIN_ROOM, HISTORY_ROOM] } }));
  await answered;
  ws.onclose = () => process.exit(4);

  let expected = 0;
  let count = 0;
  let room = '';
  let latencies: number[] | undefined;
  let error: string | undefined;
  const dataPrefix = `{"event":"${EVENT}","data":{"s":`;
  onFrame = (frame) => {
    if (!frame.startsWith(dataPrefix)) return;
    const seq = Number.parseInt(frame.slice(dataPrefix.length, frame.indexOf(',', dataPrefix.length)), 10);
    const inRoom = frame.includes(`"room":${JSON.stringify(HISTORY_ROOM)}`) ? HISTORY_ROOM : PLAIN_ROOM;
    if (inRoom !== room || count >= expected) {
      error ??= `stray frame (room ${inRoom}, seq ${seq}) outside a run`;
      return;
    }
    if (seq !== count) {
      error ??= `out of order: expected ${count}, got ${seq}`;
      return;
    }
    if (latencies) latencies.push(nowMs() - (JSON.parse(frame).data as { t: number }).t);
    count++;
    if (count === expected) finish();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finish = () => {
    const lastAt = nowMs();
    clearTimeout(timer);
    if (error) {
      reply({ ok: false, error });
      return;
    }
    const sorted = latencies?.sort((a, b) => a - b);
    const at = (q: number) => sorted![Math.min(sorted!.length - 1, Math.floor(q * sorted!.length))]!;
    reply({ ok: true, lastAt, ...(sorted ? { p50Ms: at(0.5), p99Ms: at(0.99) } : {}) });
  };
  process.on('message', (message: { cmd: string; room: string; count: number; latency: boolean }) => {
    if (message.cmd === 'exit') {
      ws.close();
      process.exit(0);
    }
    if (message.cmd !== 'expect') return;
    room = message.room;
    expected = message.count;
    count = 0;
    error = undefined;
    latencies = message.latency ? [] : undefined;
    timer = setTimeout(() => {
      error ??= `${count} of ${expected} messages received`;
      count = expected;
      finish();
    }, RUN_TIMEOUT_MS - 5_000);
    reply({ ok: true });
  });
  reply({ ok: true });
}

interface ISender {
  /** One message. */
  send(seq: number, size: number): void;
  /** Messages handed to Redis and not answered yet (the sender waits while there are WINDOW or more). */
  pending(): number;
  /** Resolves once everything sent was answered by Redis; the count of messages dropped. */
  settle(): Promise<number>;
}

async function senderRole(
  args: { redisPort: number; kind: TSendKind; baseline?: string },
  reply: TReply,
): Promise<void> {
  const sender = await makeSender(args.redisPort, args.kind, args.baseline);
  process.on(
    'message',
    async (message: { cmd: string; messages: number; chunk: number; size: number; intervalMs: number }) => {
      if (message.cmd === 'exit') process.exit(0);
      if (message.cmd !== 'go') return;
      try {
        const cpuBefore = process.cpuUsage();
        const firstAt = nowMs();
        if (message.intervalMs > 0) {
          const start = performance.now();
          for (let seq = 0; seq < message.messages; seq++) {
            const wait = start + seq * message.intervalMs - performance.now();
            if (wait > 0) await Bun.sleep(wait);
            sender.send(seq, message.size);
          }
        } else {
          for (let seq = 0; seq < message.messages; ) {
            const end = Math.min(message.messages, seq + message.chunk);
            for (; seq < end; seq++) sender.send(seq, message.size);
            do await new Promise((resolve) => setImmediate(resolve));
            while (sender.pending() >= WINDOW);
          }
        }
        const lastCallAt = nowMs();
        const dropped = await sender.settle();
        const cpu = process.cpuUsage(cpuBefore);
        reply({ ok: true, firstAt, lastCallAt, dropped, cpuUs: cpu.user + cpu.system });
      } catch (error) {
        reply({ ok: false, error: error instanceof Error ? error.message : String(error) });
      }
    },
  );
  reply({ ok: true });
}

async function makeSender(redisPort: number, kind: TSendKind, baseline?: string): Promise<ISender> {
  if (kind.startsWith('send')) {
    const isBaseline = kind.endsWith('-baseline');
    if (isBaseline && !baseline) throw new Error(`${kind} needs --send-baseline DIR`);
    const { helper } = await startHelper(redisPort, false, sourceDir(isBaseline ? baseline : undefined));
    const destination = HISTORY_KINDS.includes(kind) ? HISTORY_ROOM : PLAIN_ROOM;
    const droppedNow = () => {
      const bus = (helper.getStats() as { bus?: Record<string, number> }).bus ?? {};
      return (
        (bus.droppedWhileDisconnected ?? 0) +
        (bus.historyFailed ?? 0) +
        (bus.historyTimedOut ?? 0) +
        (bus.publishQueueDropped ?? 0)
      );
    };
    const before = droppedNow();
    return {
      send: (seq, size) => helper.send({ destination, payload: { topic: EVENT, data: makeData(seq, size) } }),
      // Before this change the bus kept no such gauge: the baseline waits for nothing.
      pending: () => (helper.getStats() as { bus?: Record<string, number> }).bus?.publishQueueMessages ?? 0,
      settle: async () => {
        // Everything handed to Redis comes back to A's subscriber too (pattern mode): a PING queued behind it.
        const pub = (
          helper as unknown as { bus: { publisher(): { ping(): Promise<unknown> } } }
        ).bus.publisher();
        await pub.ping();
        return droppedNow() - before;
      },
    };
  }
  const { RedisHelper } = await import('../../src/redis/redis-helper.ts');
  const connection = new RedisHelper({ name: 'bench-floor', host: '127.0.0.1', port: redisPort, logger });
  if (kind === 'emitter') {
    const { WebSocketEmitter } = await import('../../src/emitter/websocket-emitter.ts');
    const emitter = new WebSocketEmitter({ redisConnection: connection, logger });
    await emitter.configure();
    let failed = 0;
    const pending = new Set<Promise<unknown>>();
    return {
      send: (seq, size) => {
        const call: Promise<unknown> = emitter
          .toRoom({ room: PLAIN_ROOM, event: EVENT, data: makeData(seq, size) })
          .then(
            () => pending.delete(call),
            () => {
              failed++;
              pending.delete(call);
            },
          );
        pending.add(call);
      },
      pending: () => pending.size,
      settle: async () => {
        await Promise.all(pending);
        return failed;
      },
    };
  }
  const { waitForRedisReady } = await import('../../src/redis/wait-ready.ts');
  const client = (connection.getClient() as Redis).duplicate({ enableAutoPipelining: true });
  await waitForRedisReady(client, 10_000);
  client.defineCommand('benchPublishScript', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
  const scripted = client as unknown as {
    benchPublishScript(...args: Array<string | number>): Promise<unknown>;
  };
  let failed = 0;
  let waiting = 0;
  const onDone = () => {
    waiting--;
  };
  const onFail = () => {
    waiting--;
    failed++;
  };
  const serverId = `floor-${process.pid}`;
  if (kind === 'floor-publish') {
    const channel = `ws:room:${PLAIN_ROOM}`;
    return {
      send: (seq, size) => {
        const data = makeData(seq, size);
        const envelope = encodeEnvelope(
          { serverId, type: WebSocketMessageTypes.ROOM, target: PLAIN_ROOM, event: EVENT, data },
          JSON.stringify(data),
        );
        waiting++;
        client.publish(channel, envelope).then(onDone, onFail);
      },
      pending: () => waiting,
      settle: async () => {
        await client.ping();
        return failed;
      },
    };
  }
  const checked = kind === 'floor-checked';
  const room = checked ? PLAIN_ROOM : HISTORY_ROOM;
  const keys = historyKeys(room, 'classic');
  const head = JSON.stringify({
    serverId,
    type: WebSocketMessageTypes.ROOM,
    target: room,
    event: EVENT,
  }).slice(0, -1);
  let epoch = 0;
  return {
    send: (seq, size) => {
      const dataJson = JSON.stringify(makeData(seq, size));
      waiting++;
      scripted
        .benchPublishScript(
          keys.meta,
          keys.stream,
          `floor${process.pid}.${epoch++}`,
          HISTORY_POLICY.metaTtl,
          HISTORY_POLICY.ttl,
          HISTORY_POLICY.size,
          `ws:room:${room}`,
          head,
          EVENT,
          '1',
          dataJson,
          0,
          checked ? 'c' : 'p',
        )
        .then(onDone, onFail);
    },
    pending: () => waiting,
    settle: async () => {
      await client.ping();
      return failed;
    },
  };
}

if (import.meta.main) {
  watchParent();
  const [role, json] = process.argv.slice(2);
  const args = JSON.parse(json ?? '{}');
  const reply = ipcReply();
  const roles: Record<string, (a: never, r: TReply) => Promise<void>> = {
    receiver: receiverRole,
    client: clientRole,
    sender: senderRole,
  };
  const run = roles[role ?? ''];
  if (!run) {
    console.error(`send-throughput: unknown role ${role}`);
    process.exit(2);
  }
  run(args as never, reply).catch((error: unknown) => {
    reply({ ok: false, error: error instanceof Error ? error.message : String(error) });
    setTimeout(() => process.exit(1), 100);
  });
}
