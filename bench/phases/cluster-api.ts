// The cluster-API phase of the benchmark (issue 11): what presence costs a join, how long a
// `presence()` read of a big room takes, and how many request/response round trips the helper
// answers. It runs in a child process of its own (`bun bench/phases/cluster-api.ts <settings>`)
// holding the servers under test and their clients (Bun's WebSocket client), against the run's
// redis-server; the orchestrator reads one JSON line back. Ratios matter, not absolutes:
//   join rate: two helpers in Redis mode, identical but for `presenceFn` (the joined room keeps
//   presence; the default rooms every client is put in do not), take turns; each round connects, authenticates and joins N clients, CONNECT_BATCH
//   at a time, then closes them. The target is the median on/off ratio of the same run. A third
//   helper, taking turns with them, has presence on and one client subscribed to the room's
//   join/leave events, so every join is also published and delivered (no target, shown for cost;
//   each side joins a room of its own, and in the default pattern mode the other two helpers
//   receive and decode the watched side's events too, as the other instances of a fleet would).

import { silentLogger } from '../../src/common/logger.ts';
import { RedisPresenceStore } from '../../src/presence/redis-store.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { waitForRedisReady } from '../../src/redis/wait-ready.ts';
import type { IWebSocketServerOptions } from '../../src/server/options.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';

export interface IClusterApiSettings {
  redisPort: number;
  /** Clients per join round (0 skips the phase). */
  clients: number;
  /** Rounds per side (alternating off, on). */
  rounds: number;
  /** Members of the `presence()` room, written half by each of two instances. */
  presenceMembers: number;
  presenceReads: number;
  /** Time per request/response workload. */
  requestMs: number;
  /** Connections of the many-connections request workload. */
  requestConnections: number;
}

export interface IClusterApiResult {
  settings: Omit<IClusterApiSettings, 'redisPort'>;
  /** Connect + authenticate + join per second, one figure per round. */
  joinOff: number[];
  joinOn: number[];
  /** Presence on and one client (kept connected) subscribed to the room's join/leave events. */
  joinWatched: number[];
  /** The median of the rounds' on / off ratios (each on round against the off round just before it). */
  joinRatio: number;
  presenceMs: { median: number; p95: number };
  /** Request/response round trips per second. */
  requests: { oneConnection100InFlight: number; oneConnection1InFlight: number; manyConnections: number };
}

/** What `npm run bench` measures besides the clients per round (`--cluster-api-clients`). */
export const CLUSTER_API_SETTINGS: Omit<IClusterApiSettings, 'redisPort' | 'clients'> = {
  rounds: 7,
  presenceMembers: 10_000,
  presenceReads: 30,
  requestMs: 2_000,
  requestConnections: 1_000,
};

/** The target: joins with presence on at least this fraction of the rate with it off (same run). */
export const PRESENCE_JOIN_TARGET = 0.8;
const CONNECT_BATCH = 50;
/** The room each side's clients join; one per side, so a watched room's events reach only the watched side. */
const ROOM = {
  off: 'bench-presence-off',
  on: 'bench-presence-on',
  watched: 'bench-presence-watched',
} as const;
type TSide = keyof typeof ROOM;
const presenceRoom = ({ room }: { room: string }) => room === ROOM.on || room === ROOM.watched;

// ------------------------------------------------------------------ orchestrator side

/** Runs the phase in its own process and returns what it measured. */
export async function clusterApiPhase(settings: IClusterApiSettings): Promise<IClusterApiResult> {
  const child = Bun.spawn([process.execPath, new URL(import.meta.url).pathname, JSON.stringify(settings)], {
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const out = await new Response(child.stdout).text();
  const code = await child.exited;
  const line = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`cluster-api phase exited ${code}`);
  return JSON.parse(line) as IClusterApiResult;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
/** Round n of one side against round n of the other (they ran one right after the other). */
const roundRatios = (over: number[], under: number[]) => over.map((x, n) => x / (under[n] ?? Number.NaN));
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

/** The section of docs/benchmarks.md (rendered by bench/lib/report.ts). */
export function clusterApiSection(result: IClusterApiResult): string[] {
  const s = result.settings;
  const holds = result.joinRatio >= PRESENCE_JOIN_TARGET;
  return [
    '## Cluster API (presence, requests)',
    '',
    `One process holds the servers and their clients (Bun's WebSocket client), against the run's redis-server (see [cluster.md](cluster.md)).`,
    '',
    '| What | Figure |',
    '| --- | --- |',
    `| connect + authenticate + join, ${fmt(s.clients)} clients ${CONNECT_BATCH} at a time, Redis mode, presence off (median of ${s.rounds} rounds) | ${fmt(median(result.joinOff))} /s <br><sub>rounds ${result.joinOff.map(fmt).join(', ')}</sub> |`,
    `| same, presence on (alternating with off) | ${fmt(median(result.joinOn))} /s <br><sub>rounds ${result.joinOn.map(fmt).join(', ')}</sub> |`,
    `| same, presence on and one member subscribed to the room's join/leave events (every join published and delivered) | ${fmt(median(result.joinWatched))} /s (${median(roundRatios(result.joinWatched, result.joinOff)).toFixed(2)}× off) <br><sub>rounds ${result.joinWatched.map(fmt).join(', ')}</sub> |`,
    `| \`presence()\` of a ${fmt(s.presenceMembers)}-member room on two instances (median / p95 of ${s.presenceReads} reads) | ${result.presenceMs.median.toFixed(1)} / ${result.presenceMs.p95.toFixed(1)} ms |`,
    `| request/response, 1 connection, 100 in flight | ${fmt(result.requests.oneConnection100InFlight)} /s |`,
    `| request/response, 1 connection, 1 in flight | ${fmt(result.requests.oneConnection1InFlight)} /s |`,
    `| request/response, ${fmt(s.requestConnections)} connections, 1 in flight each | ${fmt(result.requests.manyConnections)} /s |`,
    '',
    '| target | limit | measured | verdict |',
    '| --- | --- | --- | --- |',
    `| join rate, presence on / off (median of the rounds' ratios) | >= ${PRESENCE_JOIN_TARGET}× | ${result.joinRatio.toFixed(2)}×<br><sub>rounds ${spread(roundRatios(result.joinOn, result.joinOff))}</sub> | ${holds ? 'holds' : '**MISSED**'} |`,
    '',
    `The \`presence()\` room is written through the Redis presence store by two store instances (two liveness entries, half the members each) rather than by ${fmt(s.presenceMembers)} sockets, which would take more open files than a process may have here. A read is one \`HGETALL\` and one \`ZMSCORE\`, then the decoding of every member.`,
  ];
}

// ------------------------------------------------------------------ child side

interface IBenchServer {
  helper: WebSocketServerHelper;
  url: string;
  stop(): Promise<void>;
}

async function startHelper(
  redisPort: number | undefined,
  options: Partial<IWebSocketServerOptions>,
): Promise<IBenchServer> {
  const server = Bun.serve<{ clientId: string }>({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  const redis =
    redisPort === undefined
      ? undefined
      : new RedisHelper({
          name: 'bench',
          host: '127.0.0.1',
          port: redisPort,
          autoConnect: false,
          logger: silentLogger,
        });
  const helper = new WebSocketServerHelper({
    identifier: 'bench',
    authenticateFn: () => ({ userId: 'u', metadata: {} }),
    logger: silentLogger,
    limits: false,
    ...options,
    ...(redis ? { redisConnection: redis } : {}),
    server,
  } as IWebSocketServerOptions);
  await helper.configure();
  const path = helper.getPath();
  server.reload({
    fetch: (req, srv) =>
      srv.upgrade(req, { data: { clientId: crypto.randomUUID() } }) ? undefined : new Response('ws only'),
    websocket: helper.getBunWebSocketHandler() as never,
  });
  return {
    helper,
    url: `ws://127.0.0.1:${server.port}${path}`,
    async stop() {
      await helper.shutdown();
      server.stop(true);
      await redis?.disconnect();
    },
  };
}

/** Opens, authenticates and (with a room) joins; resolves with the socket once answered. */
function connectJoin(url: string, room?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onerror = () => reject(new Error('socket error'));
    ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'x' } }));
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data)) as { event: string };
      if (frame.event === 'connected') {
        if (!room) resolve(ws);
        else ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] } }));
      } else if (frame.event === 'join') resolve(ws);
    };
  });
}

async function connectMany(url: string, count: number, room?: string): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, count - i) }, () => connectJoin(url, room));
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

/** Closes the sockets and waits until the server has let every one go (presence removals included). */
async function closeAll(server: IBenchServer, sockets: WebSocket[], staying = 0): Promise<void> {
  for (const ws of sockets) ws.close();
  const until = Date.now() + 10_000;
  while (server.helper.getClients().size > staying && Date.now() < until) await Bun.sleep(20);
  await Bun.sleep(100);
}

async function joinRound(server: IBenchServer, side: TSide, count: number, staying = 0): Promise<number> {
  const started = performance.now();
  const sockets = await connectMany(server.url, count, ROOM[side]);
  const perSecond = count / ((performance.now() - started) / 1000);
  await closeAll(server, sockets, staying);
  return perSecond;
}

/** A client in the room subscribed to its join/leave events (it stays for every round). */
async function watchEvents(url: string): Promise<WebSocket> {
  const ws = await connectJoin(url, ROOM.watched);
  await new Promise<void>((resolve) => {
    ws.onmessage = (event) => {
      if ((JSON.parse(String(event.data)) as { event: string }).event === 'ws:presence:subscribe') resolve();
    };
    ws.send(JSON.stringify({ event: 'ws:presence:subscribe', data: { room: ROOM.watched } }));
  });
  ws.onmessage = null;
  return ws;
}

async function presenceLatency(
  redisPort: number,
  members: number,
  reads: number,
): Promise<{ median: number; p95: number }> {
  const connection = new RedisHelper({
    name: 'bench-m',
    host: '127.0.0.1',
    port: redisPort,
    logger: silentLogger,
  });
  const client = connection.getClient();
  const room = `bench-big-${Date.now()}`;
  const stores = ['bench-instance-a', 'bench-instance-b'].map(
    (serverId) => new RedisPresenceStore({ client: () => client, serverId, ttl: 120_000 }),
  );
  // A RedisHelper connects only when asked: this connects it and waits (bounded) for `ready`.
  await waitForRedisReady(client, 5_000);
  for (const store of stores) await store.start();
  for (let n = 0; n < members; n += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, members - n) }, (_, k) =>
        stores[(n + k) % 2]!.add(room, {
          clientId: `c${n + k}`,
          userId: `u${(n + k) % 3000}`,
          info: { name: `n${n + k}` },
        }),
      ),
    );
  }
  const server = await startHelper(redisPort, { presenceFn: () => true });
  const times: number[] = [];
  for (let i = 0; i < reads; i++) {
    const started = performance.now();
    const list = await server.helper.presence({ room });
    times.push(performance.now() - started);
    if (list.length !== members)
      throw new Error(`presence(): expected ${members} members, got ${list.length}`);
  }
  await server.stop();
  await client.del(`ws:presence:{${room}}:members`);
  for (const store of stores) await store.stop();
  await connection.disconnect();
  times.sort((a, b) => a - b);
  return {
    median: times[Math.floor(reads / 2)]!,
    p95: times[Math.min(reads - 1, Math.floor(reads * 0.95))]!,
  };
}

async function requestRate(connections: number, inFlight: number, ms: number): Promise<number> {
  const server = await startHelper(undefined, { messageHandler: ({ message }) => message.data });
  const sockets = await connectMany(server.url, connections);
  let answered = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let next = 0;
          let open = inFlight;
          const send = () => ws.send(JSON.stringify({ event: 'echo', data: next, id: String(next++) }));
          ws.onmessage = () => {
            answered++;
            if (performance.now() < deadline) send();
            else if (--open === 0) resolve();
          };
          for (let k = 0; k < inFlight; k++) send();
        }),
    ),
  );
  const perSecond = answered / ((performance.now() - started) / 1000);
  await closeAll(server, sockets);
  await server.stop();
  return perSecond;
}

async function child(settings: IClusterApiSettings): Promise<IClusterApiResult> {
  const { redisPort, ...shown } = settings;
  const off = await startHelper(redisPort, { validateRoomFn: ({ rooms }) => rooms });
  // Presence for the room each client joins, not for the two default rooms every client is put in.
  const on = await startHelper(redisPort, {
    validateRoomFn: ({ rooms }) => rooms,
    presenceFn: presenceRoom,
  });
  await joinRound(off, 'off', Math.min(100, settings.clients)); // warm-up of both
  await joinRound(on, 'on', Math.min(100, settings.clients));
  const watched = await startHelper(redisPort, {
    validateRoomFn: ({ rooms }) => rooms,
    presenceFn: presenceRoom,
  });
  const watcher = await watchEvents(watched.url);
  await joinRound(watched, 'watched', Math.min(100, settings.clients));
  const joinOff: number[] = [];
  const joinOn: number[] = [];
  const joinWatched: number[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    joinOff.push(await joinRound(off, 'off', settings.clients));
    joinOn.push(await joinRound(on, 'on', settings.clients));
    joinWatched.push(await joinRound(watched, 'watched', settings.clients, 1));
  }
  watcher.close();
  for (const server of [off, on, watched]) await server.stop();
  const presenceMs = await presenceLatency(redisPort, settings.presenceMembers, settings.presenceReads);
  return {
    settings: shown,
    joinOff,
    joinOn,
    joinWatched,
    joinRatio: median(roundRatios(joinOn, joinOff)),
    presenceMs,
    requests: {
      oneConnection100InFlight: await requestRate(1, 100, settings.requestMs),
      oneConnection1InFlight: await requestRate(1, 1, settings.requestMs),
      manyConnections: await requestRate(settings.requestConnections, 1, settings.requestMs),
    },
  };
}

if (import.meta.main) {
  const settings = JSON.parse(process.argv[2] ?? '{}') as IClusterApiSettings;
  // Bounded: the phase stops by itself whatever happens.
  setTimeout(() => {
    console.error('cluster-api phase: time limit reached');
    process.exit(2);
  }, 300_000).unref();
  const result = await child(settings);
  console.log(JSON.stringify(result));
  process.exit(0);
}
