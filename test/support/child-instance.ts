import type { Subprocess } from 'bun';

/** A server instance running as a child process, so a test can SIGKILL it. */
export interface IChildInstance {
  port: number;
  url: string;
  http: string;
  proc: Subprocess<'ignore', 'pipe', 'inherit'>;
}

/**
 * Spawns `bun run fixture` with `env` and waits (bounded) for the `ready` line it prints once
 * it listens on `port`. The process is added to `processes` so the file's teardown kills it.
 */
export async function spawnInstance(opts: {
  fixture: string;
  port: number;
  env: Record<string, string | undefined>;
  processes: Set<Subprocess>;
  timeoutMs?: number;
}): Promise<IChildInstance> {
  const { fixture, port, env, processes } = opts;
  const proc = Bun.spawn([process.execPath, 'run', fixture], { env, stdout: 'pipe', stderr: 'inherit' });
  processes.add(proc);
  const reader = proc.stdout.getReader();
  let output = '';
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (!output.includes('ready')) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)]);
    if (!chunk || chunk.done) throw new Error(`instance on ${port} did not start: ${output}`);
    output += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  return { port, url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}`, proc };
}
