import type { Subprocess } from 'bun';

/** A free TCP port on 127.0.0.1 (the OS picks it, we release it). */
export async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * A real redis-server owned by a test: started on a free port, stoppable and
 * restartable on the same port, never left running (killed on process exit).
 */
export class RedisServer {
  private proc?: Subprocess;
  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** `extraArgs` are appended to the command line (a later option wins), e.g. AOF or cluster mode. */
  static async start(port?: number, extraArgs: readonly string[] = []): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), extraArgs);
    await server.restart();
    return server;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && !this.proc.killed;
  }

  /** Starts (again) on the same port and waits until it accepts connections. */
  async restart(): Promise<void> {
    if (this.running) return;
    this.proc = Bun.spawn(
      [
        'redis-server',
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        ...this.extraArgs,
      ],
      { stdout: 'ignore', stderr: 'inherit' },
    );
    live.add(this);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await canConnect(this.port)) return;
      await Bun.sleep(20);
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** Kills the server (SIGKILL, like a crash) and waits for the port to close. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    proc.kill('SIGKILL');
    await proc.exited;
    live.delete(this);
  }

  async stop(): Promise<void> {
    await this.kill();
  }

  /** Synchronous kill for process exit. */
  killNow(): void {
    this.proc?.kill('SIGKILL');
  }
}

const live = new Set<RedisServer>();
process.on('exit', () => {
  for (const server of live) server.killNow();
});

/**
 * The Redis a test file should use: `REDIS_URL` when set, otherwise a fresh
 * redis-server on a free port. Tests that stop or restart Redis always spawn their own.
 */
export async function sharedRedis(): Promise<{ host: string; port: number; stop: () => Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (url) {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379), stop: async () => {} };
  }
  const server = await RedisServer.start();
  return { host: '127.0.0.1', port: server.port, stop: () => server.stop() };
}
