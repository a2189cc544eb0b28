// Child processes of a bench run: the Redis, the servers under test and the
// client processes. Every one is tracked and killed when the run ends, however
// it ends; each child also exits by itself when the orchestrator disappears.

import type { Subprocess } from 'bun';
import type { TClientCommand, TClientReply } from './ipc.ts';
import { type ICpuSample, type IMemorySample, protocolOf, serverOf, type TServerKind } from './shared.ts';

const BENCH_DIR = new URL('..', import.meta.url).pathname;
const live = new Set<Subprocess>();

/** Kills every child and waits (briefly) until each is reaped. */
export async function stopAll(): Promise<void> {
  const procs = [...live];
  killAll();
  await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(2_000)]);
}

export function killAll(): void {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function track(proc: Subprocess): Subprocess {
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

/** The soft open-file limit children should run with: the hard limit, capped at 65 535. */
export function fileLimit(): number {
  const out = Bun.spawnSync(['sh', '-c', 'ulimit -Hn']).stdout.toString().trim();
  const hard = out === 'unlimited' ? 65_535 : Number(out);
  return Number.isFinite(hard) && hard > 0 ? Math.min(hard, 65_535) : 1024;
}

/** Runs argv under `sh -c 'ulimit -n N; exec …'` so Node children get the raised limit too. */
function withFileLimit(argv: string[], limit: number): string[] {
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  return ['sh', '-c', `ulimit -n ${limit} 2>/dev/null; exec ${quoted}`];
}

/**
 * The child's first stdout line that `accept` takes (by default the first line);
 * lines before it (a library's own start-up logging) are passed on to stderr.
 */
async function firstLine(
  stream: ReadableStream<Uint8Array>,
  timeoutMs: number,
  what: string,
  accept: (line: string) => boolean = () => true,
): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  const deadline = Date.now() + timeoutMs;
  let line: string | undefined;
  while (line === undefined) {
    const end = buffered.indexOf('\n');
    if (end >= 0) {
      const candidate = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (accept(candidate)) line = candidate;
      else process.stderr.write(`${candidate}\n`);
      continue;
    }
    const chunk = await Promise.race([
      reader.read(),
      Bun.sleep(Math.max(1, deadline - Date.now())).then(() => 'timeout' as const),
    ]);
    if (chunk === 'timeout') throw new Error(`${what} did not start within ${timeoutMs} ms`);
    if (chunk.done) throw new Error(`${what} exited before it was ready`);
    buffered += decoder.decode(chunk.value, { stream: true });
  }
  if (buffered.length > 0) process.stderr.write(buffered);
  // Keep draining, so a chatty child can never block on a full pipe.
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        process.stderr.write(value);
      }
    } catch {
      // the child is gone
    }
  })();
  return line;
}

export interface IRedis {
  port: number;
}

/**
 * A private redis-server on a free port, killed with the run. A shell watchdog
 * beside it kills it if the orchestrator dies without cleaning up (redis has no
 * parent-death option).
 */
export async function startRedis(): Promise<IRedis> {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const redis = track(
    Bun.spawn(
      [
        'redis-server',
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdout: 'ignore', stderr: 'inherit' },
    ),
  );
  // Watchdog: if this process is killed outright (no exit handler runs), take redis down too.
  track(
    Bun.spawn(
      [
        'sh',
        '-c',
        `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${redis.pid} 2>/dev/null; do sleep 0.5; done; kill -9 ${redis.pid} 2>/dev/null`,
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    ),
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } });
      socket.end();
      return { port };
    } catch {
      await Bun.sleep(25);
    }
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

export interface IServerProc {
  kind: TServerKind;
  instance: string;
  port: number;
  /** The WebSocket URL clients connect to. */
  url: string;
  proc: Subprocess;
  cpu(): Promise<ICpuSample>;
  memory(): Promise<IMemorySample>;
  post(path: string, body: unknown): Promise<void>;
  stop(): Promise<void>;
}

export async function startServer(
  kind: TServerKind,
  instance: string,
  redisPort: number,
  limit: number,
  /** Extra environment for this server (e.g. BENCH_SUBSCRIPTION_MODE for the capacity run). */
  extraEnv: Record<string, string> = {},
): Promise<IServerProc> {
  // BENCH_PROFILE_DIR (run.ts --profile DIR): every server writes a CPU profile there when it exits.
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const profile = profileDir
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${profileDir}`,
        `--cpu-prof-name=${kind}-${instance}-${Date.now()}.cpuprofile`,
      ]
    : [];
  const socketIo = protocolOf(kind) === 'socketio';
  if (profileDir && !socketIo) profile.push('--cpu-prof-interval=250');
  const { file, env } = serverOf(kind);
  const argv = socketIo
    ? ['node', '--expose-gc', ...profile, `${BENCH_DIR}servers/${file}`]
    : [process.execPath, ...profile, `${BENCH_DIR}servers/${file}`];
  const proc = track(
    Bun.spawn(withFileLimit(argv, limit), {
      stdout: 'pipe',
      stderr: 'inherit',
      env: {
        ...process.env,
        BENCH_PARENT_PID: String(process.pid),
        BENCH_REDIS_PORT: String(redisPort),
        BENCH_INSTANCE: instance,
        ...env,
        ...extraEnv,
      },
    }),
  );
  // Ignis logs its start-up to stdout before READY.
  const line = await firstLine(proc.stdout as ReadableStream<Uint8Array>, 20_000, `${kind} server`, (l) =>
    kind === 'ignis' ? l.startsWith('READY ') : true,
  );
  const match = /^READY (\d+)$/.exec(line.trim());
  if (!match) throw new Error(`${kind} server said "${line}" instead of READY <port>`);
  const port = Number(match[1]);
  const base = `http://127.0.0.1:${port}`;
  const call = async (path: string, init?: RequestInit): Promise<unknown> => {
    const res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(120_000) });
    if (!res.ok) throw new Error(`${kind} ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  return {
    kind,
    instance,
    port,
    url: socketIo
      ? `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`
      : `ws://127.0.0.1:${port}/ws`,
    proc,
    cpu: () => call('/ctl/cpu') as Promise<ICpuSample>,
    memory: () => call('/ctl/memory', { method: 'POST' }) as Promise<IMemorySample>,
    post: async (path, body) => {
      await call(path, { method: 'POST', body: JSON.stringify(body) });
    },
    async stop() {
      try {
        await call('/ctl/exit', { method: 'POST' });
      } catch {
        // it may already be gone
      }
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3_000).then(() => false)]);
      if (!exited) proc.kill('SIGKILL');
      await proc.exited;
    },
  };
}

export interface IClientProc {
  name: string;
  call(cmd: TClientCommand, timeoutMs?: number): Promise<TClientReply>;
  stop(): Promise<void>;
}

/**
 * A child process driven over Bun IPC: it says it is ready with a first message, then answers each
 * command with one reply. Commands go one at a time; one not answered within its timeout resolves
 * `{ ok: false, error }` (the run reports it), never hangs the orchestrator.
 */
export async function spawnCommandProcess<TCommand extends { cmd: string }, TReply>(
  name: string,
  script: string,
  timedOut: (message: string) => TReply,
): Promise<{ proc: Subprocess; call(cmd: TCommand, timeoutMs: number): Promise<TReply> }> {
  let pending: ((reply: TReply) => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    pending = () => resolve();
  });
  const proc = track(
    Bun.spawn([process.execPath, script], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, BENCH_PARENT_PID: String(process.pid) },
      serialization: 'json',
      ipc(message: TReply) {
        const resolve = pending;
        pending = undefined;
        resolve?.(message);
      },
    }),
  );
  await Promise.race([
    ready,
    Bun.sleep(20_000).then(() => {
      throw new Error(`${name} did not start`);
    }),
  ]);
  let queue = Promise.resolve();
  const call = (cmd: TCommand, timeoutMs: number): Promise<TReply> => {
    const run = queue.then(
      () =>
        new Promise<TReply>((resolve) => {
          const timer = setTimeout(() => {
            pending = undefined;
            resolve(timedOut(`${name}: no reply to ${cmd.cmd} within ${timeoutMs} ms`));
          }, timeoutMs);
          pending = (reply) => {
            clearTimeout(timer);
            resolve(reply);
          };
          proc.send(cmd);
        }),
    );
    queue = run.then(() => undefined);
    return run;
  };
  return { proc, call };
}

export async function startClient(name: string): Promise<IClientProc> {
  const { proc, call: send } = await spawnCommandProcess<TClientCommand, TClientReply>(
    `client ${name}`,
    `${BENCH_DIR}clients/client.ts`,
    (error) => ({ ok: false, error }),
  );
  const call = (cmd: TClientCommand, timeoutMs = 120_000) => send(cmd, timeoutMs);
  return {
    name,
    call,
    async stop() {
      try {
        proc.send({ cmd: 'exit' });
      } catch {
        // already gone
      }
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3_000).then(() => false)]);
      if (!exited) proc.kill('SIGKILL');
    },
  };
}

/**
 * Waits until a server reports `expected` clients (closing sockets are forgotten asynchronously);
 * past ten seconds throws what `failure` makes of the message.
 */
export async function settleClients(
  server: IServerProc,
  expected: number,
  failure: (message: string) => Error = (message) => new Error(message),
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${server.port}/ctl/stats`);
    const { clients } = (await res.json()) as { clients: number };
    if (clients === expected) return;
    if (Date.now() > deadline) throw failure(`server holds ${clients} clients, expected ${expected}`);
    await Bun.sleep(20);
  }
}

/** Redis's own CPU time (user + system, µs) so far, from `INFO cpu`: what no server figure counts. */
export function redisCpuUs(port: number): number {
  const info = Bun.spawnSync(['redis-cli', '-p', String(port), 'INFO', 'cpu']).stdout.toString();
  const seconds = (name: string) =>
    Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
}
