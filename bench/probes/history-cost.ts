// Probe: what history costs. Bounded; prints the figures, writes nothing.
//   bun run bench/probes/history-cost.ts [--clients 1000,5000] [--messages 100] [--rounds 3] [--recover 1000] [--memory]
//
// 1. send() fan-out to a room with history vs the same room without, same server, same clients,
//    alternating rounds: the server's CPU per delivered message (its own user+system time over the
//    workload, divided by messages × clients). Redis mode unless --memory.
// 2. `--recover N` clients joined to a history room all disconnect, 100 messages are sent, and all N
//    reconnect at once, each joining with `since`: the time until every one has its reply and its 100
//    missed messages, and the server CPU spent; against the same N reconnecting to a room without
//    history (join only).

import { startRedis, stopAll } from '../lib/procs.ts';

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const SCALES = arg('--clients', '1000,5000').split(',').map(Number);
const MESSAGES = Number(arg('--messages', '100'));
const ROUNDS = Number(arg('--rounds', '3'));
const RECOVER = Number(arg('--recover', '1000'));
const MISSED = 100;
const SIZE = 200;
const MEMORY = process.argv.includes('--memory');
const CONCURRENCY = 200;

interface IServer {
  port: number;
  command<T>(line: string): Promise<T>;
  stop(): Promise<void>;
}

async function startServer(redisPort: number | undefined): Promise<IServer> {
  const proc = Bun.spawn([process.execPath, new URL('./history-server.ts', import.meta.url).pathname], {
    env: { ...process.env, ...(redisPort ? { REDIS_PORT: String(redisPort) } : {}) },
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  const nextLine = async <T>(): Promise<T> => {
    while (!buffered.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('probe server exited early');
      buffered += decoder.decode(value);
    }
    const line = buffered.slice(0, buffered.indexOf('\n'));
    buffered = buffered.slice(line.length + 1);
    return JSON.parse(line) as T;
  };
  const { port } = await nextLine<{ port: number }>();
  return {
    port,
    async command<T>(line: string): Promise<T> {
      proc.stdin.write(`${line}\n`);
      await proc.stdin.flush();
      return nextLine<T>();
    },
    async stop() {
      proc.stdin.end();
      await proc.exited;
    },
  };
}

/** One connection that authenticates, joins `rooms` (with `since` when given) and counts `m` frames. */
class Client {
  received = 0;
  last?: { offset: number; epoch: string };
  private ws!: WebSocket;
  private onJoin?: (data: { positions?: Record<string, { offset: number; epoch: string }> }) => void;
  private waiters: Array<() => void> = [];

  async open(
    port: number,
    rooms: string[],
    since?: Record<string, { offset: number; epoch: string }>,
  ): Promise<void> {
    this.received = 0;
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      this.ws = ws;
      ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: {} }));
      ws.onerror = () => reject(new Error('connection failed'));
      ws.onmessage = (e) => {
        const text = e.data as string;
        if (text.startsWith('{"event":"m"')) {
          this.received++;
          const frame = JSON.parse(text) as { offset?: number; epoch?: string };
          if (frame.offset !== undefined) this.last = { offset: frame.offset, epoch: frame.epoch! };
          for (const wake of this.waiters.splice(0)) wake();
          return;
        }
        const frame = JSON.parse(text) as { event: string; data: never };
        if (frame.event === 'connected')
          ws.send(JSON.stringify({ event: 'join', data: { rooms, ...(since ? { since } : {}) } }));
        else if (frame.event === 'join') {
          const position = (frame.data as { positions?: Record<string, { offset: number; epoch: string }> })
            .positions;
          const first = position ? Object.values(position)[0] : undefined;
          if (first && !this.last) this.last = first;
          this.onJoin?.(frame.data);
          resolve();
        }
      };
    });
  }

  until(count: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.received >= count) resolve();
        else if (Date.now() > deadline) reject(new Error(`client got ${this.received}/${count}`));
        else {
          this.waiters.push(check);
          setTimeout(check, 1_000);
        }
      };
      check();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.onclose = () => resolve();
      this.ws.close();
    });
  }
}

async function openAll(
  clients: Client[],
  port: number,
  rooms: (c: Client) => [string[], Record<string, { offset: number; epoch: string }>?],
): Promise<void> {
  for (let i = 0; i < clients.length; i += CONCURRENCY) {
    await Promise.all(clients.slice(i, i + CONCURRENCY).map((c) => c.open(port, ...rooms(c))));
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const redisPort = MEMORY ? undefined : (await startRedis()).port;
console.log(
  `history probe: ${MEMORY ? 'single-instance (memory)' : 'Redis'} mode, ${MESSAGES} messages of ~${SIZE} B, ${ROUNDS} rounds`,
);

try {
  for (const scale of SCALES) {
    const server = await startServer(redisPort);
    const clients = Array.from({ length: scale }, () => new Client());
    await openAll(clients, server.port, () => [['h-fan', 'plain-fan']]);
    const perMessage: Record<string, number[]> = { 'h-fan': [], 'plain-fan': [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const room of r % 2 ? ['plain-fan', 'h-fan'] : ['h-fan', 'plain-fan']) {
        for (const c of clients) c.received = 0;
        const before = await server.command<{ cpuUs: number }>('measure');
        await server.command(`send ${room} ${MESSAGES} ${SIZE}`);
        await Promise.all(clients.map((c) => c.until(MESSAGES)));
        const after = await server.command<{ cpuUs: number }>('measure');
        perMessage[room]!.push((after.cpuUs - before.cpuUs) / (MESSAGES * scale));
      }
    }
    const withHistory = median(perMessage['h-fan']!);
    const without = median(perMessage['plain-fan']!);
    console.log(
      `fan-out ${scale} clients: history ${withHistory.toFixed(3)} µs CPU/delivery, no history ${without.toFixed(3)} µs, ratio ${(withHistory / without).toFixed(2)}×  (rounds: ${perMessage['h-fan']!.map((v) => v.toFixed(3)).join(' ')} | ${perMessage['plain-fan']!.map((v) => v.toFixed(3)).join(' ')})`,
    );
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }

  if (RECOVER > 0) {
    for (const [label, room] of [
      ['recovering (join with since)', 'h-rec'],
      ['plain reconnect (no history)', 'plain-rec'],
    ] as const) {
      const server = await startServer(redisPort);
      const clients = Array.from({ length: RECOVER }, () => new Client());
      await openAll(clients, server.port, () => [[room]]);
      await Promise.all(clients.map((c) => c.close()));
      await server.command(`send ${room} ${MISSED} ${SIZE}`);
      await Bun.sleep(200);
      const before = await server.command<{ cpuUs: number }>('measure');
      const started = performance.now();
      await Promise.all(
        clients.map((c) =>
          c.open(server.port, [room], room === 'h-rec' && c.last ? { [room]: c.last } : undefined),
        ),
      );
      if (room === 'h-rec') await Promise.all(clients.map((c) => c.until(MISSED)));
      const elapsed = performance.now() - started;
      const after = await server.command<{ cpuUs: number }>('measure');
      const got = clients.reduce((n, c) => n + c.received, 0);
      console.log(
        `${RECOVER} clients ${label}: all done in ${elapsed.toFixed(0)} ms, server CPU ${((after.cpuUs - before.cpuUs) / 1000).toFixed(0)} ms, messages recovered ${got}`,
      );
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
    }
  }
} finally {
  await stopAll();
}
