// The control channel of a Bun server under test: plain HTTP on the server's own
// port, under /ctl/. The orchestrator reads CPU time and memory through it and
// asks the server to emit messages, so every figure comes from inside the process.

import { readdirSync, readFileSync } from 'node:fs';
import type { ICpuSample, IMemorySample, IPaceRequest, IPublishRequest } from '../lib/shared.ts';

export interface IServerUnderTest {
  /** Emits `req.count` messages synchronously. */
  publish(req: IPublishRequest): void;
  /** Authenticated clients currently held. */
  clients(): number;
  /** Members of the benchmark room, where the server can tell (a join Ignis does not acknowledge). */
  roomMembers?(): number;
}

/** The part of mimalloc's statistics (in `heapStats()` since Bun 1.3) the heap probe reads. */
interface IMimallocStats {
  malloc_normal: { current: number };
  committed: { current: number };
  malloc_bins: { block_size: number; current: number }[];
}

/**
 * Runs a child process's IPC loop: each command from the orchestrator goes to `handle`, its reply
 * (or `{ ok: false, error }`) goes back; the process exits with its parent and says it is ready.
 */
export function serveParent<C>(handle: (command: C) => Promise<object>): void {
  process.on('message', (command: C) => {
    handle(command).then(
      (reply) => process.send?.(reply),
      (error: unknown) =>
        process.send?.({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  watchParent();
  process.send?.({ ok: true });
}

/** Exits when the orchestrator is gone, so a killed run never leaves a server behind. */
export function watchParent(): void {
  const parent = Number(process.env.BENCH_PARENT_PID);
  if (!parent) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(3);
    }
  }, 1_000);
  timer.unref();
}

/**
 * CPU time (µs) of this process's threads, summed by thread name (`/proc/self/task/<tid>/stat`, 10 ms
 * ticks): tells the JavaScript thread from the engine's GC helper threads. Linux only; empty elsewhere.
 */
function cpuByThread(): Record<string, number> {
  const byName: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
      byName[name] = (byName[name] ?? 0) + ticks * 10_000;
    }
  } catch {
    // not Linux
  }
  return byName;
}

function cpu(): ICpuSample {
  const { user, system } = process.cpuUsage();
  return { user, system };
}

async function collect(): Promise<IMemorySample> {
  for (let i = 0; i < 3; i++) {
    Bun.gc(true);
    await Bun.sleep(50);
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed };
}

/** Sends `count` messages one `intervalMs` apart (from a fixed schedule, so timer drift does not add up). */
function pace(sut: IServerUnderTest, req: IPaceRequest): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    let seq = 0;
    const tick = () => {
      sut.publish({ mode: 'send', room: req.room, count: 1, size: req.size, seq });
      seq++;
      if (seq >= req.count) {
        resolve();
        return;
      }
      setTimeout(tick, Math.max(0, start + seq * req.intervalMs - performance.now()));
    };
    tick();
  });
}

/** Answers a /ctl/ request, or returns undefined for any other path. */
export async function control(req: Request, sut: IServerUnderTest): Promise<Response | undefined> {
  // A substring test, not a URL parse: upgrades pass through here too and must not pay for it.
  const at = req.url.indexOf('/ctl/');
  if (at < 0) return undefined;
  switch (req.url.slice(at)) {
    case '/ctl/cpu':
      return Response.json(cpu());
    case '/ctl/threads':
      return Response.json(cpuByThread());
    case '/ctl/memory':
      return Response.json(await collect());
    case '/ctl/heap': {
      // Object counts by type after a full GC, for diffing what a connection leaves on the heap.
      Bun.gc(true);
      const { heapStats } = await import('bun:jsc');
      return Response.json(heapStats().objectTypeCounts);
    }
    case '/ctl/heapstats': {
      // The engine's own accounting after full GCs (as for /ctl/memory): what of the resident size
      // is the counted heap. A GC frees the 16 KB blocks of the heap back to mimalloc over a few
      // milliseconds, hence the pauses.
      await collect();
      const { heapStats } = await import('bun:jsc');
      const stats = heapStats() as ReturnType<typeof heapStats> & { mimalloc?: IMimallocStats };
      return Response.json({
        rss: process.memoryUsage().rss,
        heapSize: stats.heapSize,
        heapCapacity: stats.heapCapacity,
        extraMemorySize: stats.extraMemorySize,
        objectCount: stats.objectCount,
        mallocInUse: stats.mimalloc?.malloc_normal.current,
        mallocCommitted: stats.mimalloc?.committed.current,
        // Blocks in use per size class: which sizes a connection's native allocations have.
        mallocBins: Object.fromEntries(
          (stats.mimalloc?.malloc_bins ?? []).map((bin) => [String(bin.block_size), bin.current]),
        ),
        objectTypeCounts: stats.objectTypeCounts,
      });
    }
    case '/ctl/stats':
      return Response.json({ clients: sut.clients(), roomMembers: sut.roomMembers?.() });
    case '/ctl/publish':
      sut.publish((await req.json()) as IPublishRequest);
      return Response.json({ ok: true });
    case '/ctl/pace':
      await pace(sut, (await req.json()) as IPaceRequest);
      return Response.json({ ok: true });
    case '/ctl/exit':
      setTimeout(() => process.exit(0), 10);
      return Response.json({ ok: true });
    default:
      return new Response('unknown control path', { status: 404 });
  }
}
