import { afterEach } from 'bun:test';
import type { ClusterOptions } from 'ioredis';
import { silentLogger } from '../../src/common/logger.ts';
import type { AnyRecord, ILogger } from '../../src/common/types.ts';
import type { TPubSubKind } from '../../src/redis/pubsub-kind.ts';
import { RedisClusterHelper } from '../../src/redis/redis-cluster-helper.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import type { IWebSocketServerOptions } from '../../src/server/options.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';

export type TTestServerOptions = Omit<Partial<IWebSocketServerOptions>, 'server'> & {
  /** Redis to scale over; omit for single-instance mode. */
  redis?: { host: string; port: number };
  /** Or a Redis Cluster to scale over (through a `RedisClusterHelper`). */
  redisCluster?: {
    nodes: Array<{ host: string; port: number }>;
    clusterOptions?: ClusterOptions;
    pubSub?: TPubSubKind;
  };
};

export interface ITestServer {
  helper: WebSocketServerHelper;
  server: ReturnType<typeof Bun.serve>;
  url: string;
  httpUrl: string;
  redisHelper?: RedisHelper | RedisClusterHelper;
  stop(): Promise<void>;
}

/** Accepts `{ token: 'ok' }` (userId from `user`, default 'u1'); refuses everything else. */
export const acceptOkToken = (data: AnyRecord) =>
  data.token === 'ok'
    ? { userId: typeof data.user === 'string' ? data.user : 'u1', metadata: { role: 'tester' } }
    : null;

/** A collecting logger, so tests can assert on what was logged. */
export function recordingLogger(): ILogger & { lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const at = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A real Bun.serve on 127.0.0.1:0 wired to a configured helper. */
export async function startServer(opts: TTestServerOptions = {}): Promise<ITestServer> {
  const server = Bun.serve<{ clientId: string }>({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  const { redis, redisCluster, ...helperOptions } = opts;
  const redisHelper = redisCluster
    ? new RedisClusterHelper({ name: 'test', ...redisCluster, logger: silentLogger })
    : redis
      ? new RedisHelper({
          name: 'test',
          host: redis.host,
          port: redis.port,
          autoConnect: false,
          logger: silentLogger,
        })
      : undefined;
  const helper = new WebSocketServerHelper({
    identifier: 'test-ws',
    authenticateFn: acceptOkToken,
    logger: silentLogger,
    ...helperOptions,
    ...(redisHelper ? { redisConnection: redisHelper } : {}),
    server,
  } as IWebSocketServerOptions);
  await helper.configure();
  const path = helper.getPath();
  server.reload({
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname === path) {
        if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
        return new Response('upgrade failed', { status: 500 });
      }
      return new Response('ok');
    },
    websocket: helper.getBunWebSocketHandler() as never,
  });
  return {
    helper,
    server,
    url: `ws://127.0.0.1:${server.port}${path}`,
    httpUrl: `http://127.0.0.1:${server.port}`,
    redisHelper,
    async stop() {
      await helper.shutdown();
      server.stop(true);
      await redisHelper?.disconnect();
    },
  };
}

/**
 * For a test file: returns `serve(opts)`, which starts a server, and registers
 * an `afterEach` that stops the server the test started.
 */
export function serverPerTest(): (opts?: TTestServerOptions) => Promise<ITestServer> {
  let current: ITestServer | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  return async (opts = {}) => {
    current = await startServer(opts);
    return current;
  };
}

/** Polls `predicate` until it holds or `timeout` passes. */
export async function eventually(
  predicate: () => boolean,
  timeout = 3_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
