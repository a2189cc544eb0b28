// Scaling benchmark: 4 instances, ROOMS rooms, each instance holding one member of each room of
// its quarter; an emitter publishes MESSAGES messages to uniformly random rooms at RATE per second.
// Measured per run: each instance's CPU time per message it delivered, Redis CPU (all masters), in
// the subscription mode and topology given. Short and bounded (the machine is shared).
//
//   bun bench/scaling/run.ts <pattern|rooms> <single|cluster> [messages=20000] [rate=4000]
//   bun bench/scaling/run.ts --rounds N [--messages M] [--rate R]   # the four configurations, alternating
// On the cluster (3 masters, no replicas) pattern mode runs classic Pub/Sub, rooms mode sharded.
// `npm run bench` runs the alternating form as a phase (bench/run.ts --scaling-only / --no-scaling).
import { Redis } from 'ioredis';
import { RedisClusterHelper, RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisCluster } from '../../test/support/redis-cluster.ts';
import { RedisServer } from '../../test/support/redis-server.ts';

const INSTANCES = 4;
const ROOMS = 1_000;

export type TScalingMode = 'pattern' | 'rooms';
export type TScalingTopology = 'single' | 'cluster';

/** One run of one configuration (`scaling` in docs/benchmarks.json). */
export interface IScalingResult {
  mode: TScalingMode;
  pubSub: 'classic' | 'sharded' | 'single node';
  topology: TScalingTopology;
  round?: number;
  messages: number;
  delivered: number;
  seconds: number;
  instanceCpuUsPerDelivered: number[];
  instanceCpuUsPerDeliveredMean: number;
  instanceIdleCpuUsPerSecond: number[];
  /** Instance CPU per delivered message with each instance's idle CPU over the same time taken off. */
  instanceBusyCpuUsPerDeliveredMean: number;
  redisCpuUsPerMessage: number;
  redisBusyCpuUsPerMessage: number;
}

/** The Redis a configuration runs against: one node, or the 3-master cluster. */
interface IRedisUnderTest {
  ports: number[];
  /** argv of bench/scaling/instance.ts. */
  arg: string;
  emitterConnection(mode: TScalingMode): RedisHelper | RedisClusterHelper;
}

function singleNode(single: RedisServer): IRedisUnderTest {
  return {
    ports: [single.port],
    arg: `127.0.0.1:${single.port}`,
    emitterConnection: () =>
      new RedisHelper({ name: 'emitter', host: '127.0.0.1', port: single.port, logger: silentLogger }),
  };
}

function clusterOf(cluster: RedisCluster): IRedisUnderTest {
  return {
    ports: cluster.livePorts,
    arg: `cluster:${cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',')}`,
    emitterConnection: (mode) =>
      new RedisClusterHelper({
        name: 'emitter',
        nodes: cluster.seeds,
        pubSub: mode === 'pattern' ? 'classic' : 'sharded',
        logger: silentLogger,
      }),
  };
}

async function redisCpu(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const node = new Redis({ host: '127.0.0.1', port });
    const info = String(await node.info('cpu'));
    await node.quit();
    total += Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
  }
  return total * 1e6;
}

/** One configuration: 4 fresh instances on `redis`, 1,000 clients, `messages` at `rate` per second. */
export async function scalingRun(
  mode: TScalingMode,
  topology: TScalingTopology,
  redis: IRedisUnderTest,
  messages: number,
  rate: number,
): Promise<IScalingResult> {
  const procs = await Promise.all(
    Array.from({ length: INSTANCES }, async () => {
      const proc = Bun.spawn(
        [process.execPath, new URL('./instance.ts', import.meta.url).pathname, mode, redis.arg],
        { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' },
      );
      const reader = proc.stdout.getReader();
      const { value } = await reader.read();
      const { port } = JSON.parse(new TextDecoder().decode(value).split('\n')[0]!) as { port: number };
      return { proc, port };
    }),
  );
  const sockets: WebSocket[] = [];
  const emitterRedis = redis.emitterConnection(mode);
  const emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  try {
    // Clients: instance i holds one member of each room in [i*250, (i+1)*250).
    const received = new Array(INSTANCES).fill(0) as number[];
    const perInstance = ROOMS / INSTANCES;
    for (const [i, { port }] of procs.entries()) {
      await Promise.all(
        Array.from({ length: perInstance }, (_, k) => {
          const room = `room-${i * perInstance + k}`;
          return new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
            sockets.push(ws);
            ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: {} }));
            ws.onerror = () => reject(new Error('connect failed'));
            ws.onmessage = (e) => {
              const text = String(e.data);
              if (text.startsWith('{"event":"m"')) received[i]!++;
              else if (text.startsWith('{"event":"connected"'))
                ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] } }));
              else if (text.startsWith('{"event":"join"')) resolve();
            };
          });
        }),
      );
    }
    await emitter.configure();

    const stats = () =>
      Promise.all(
        procs.map(
          async ({ port }) =>
            (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { cpuUs: number },
        ),
      );

    const payload = { text: 'x'.repeat(40), n: 0 };
    // The instances' idle CPU (timers, the cluster client's slot refreshes), subtracted below.
    const idleFrom = await stats();
    const idleRedisFrom = await redisCpu(redis.ports);
    const idleStart = performance.now();
    await Bun.sleep(1_000);
    const idleTo = await stats();
    const idleSeconds = (performance.now() - idleStart) / 1000;
    const idleUsPerSecond = idleTo.map((s, i) => (s.cpuUs - idleFrom[i]!.cpuUs) / idleSeconds);
    const idleRedisUsPerSecond = ((await redisCpu(redis.ports)) - idleRedisFrom) / idleSeconds;
    const before = await stats();
    const redisBefore = await redisCpu(redis.ports);
    const started = performance.now();
    const batch = Math.max(1, Math.round(rate / 100)); // every 10 ms
    for (let sent = 0; sent < messages; ) {
      const tick = performance.now();
      const publishes: Promise<unknown>[] = [];
      for (let k = 0; k < batch && sent < messages; k++, sent++) {
        payload.n = sent;
        publishes.push(
          emitter.toRoom({ room: `room-${Math.floor(Math.random() * ROOMS)}`, event: 'm', data: payload }),
        );
      }
      await Promise.all(publishes);
      const wait = 10 - (performance.now() - tick);
      if (wait > 0) await Bun.sleep(wait);
    }
    const deadline = Date.now() + 10_000;
    while (received.reduce((a, b) => a + b, 0) < messages && Date.now() < deadline) await Bun.sleep(20);
    const elapsed = (performance.now() - started) / 1000;
    const after = await stats();
    const redisAfter = await redisCpu(redis.ports);
    const delivered = received.reduce((a, b) => a + b, 0);
    const cpuPerMsg = after.map((s, i) => (s.cpuUs - before[i]!.cpuUs) / Math.max(1, received[i]!));
    const busyPerMsg = after.map(
      (s, i) => (s.cpuUs - before[i]!.cpuUs - idleUsPerSecond[i]! * elapsed) / Math.max(1, received[i]!),
    );
    const mean = (values: number[]) => Number((values.reduce((a, b) => a + b, 0) / values.length).toFixed(1));
    return {
      mode,
      pubSub: topology === 'cluster' ? (mode === 'pattern' ? 'classic' : 'sharded') : 'single node',
      topology,
      messages,
      delivered,
      seconds: Number(elapsed.toFixed(2)),
      instanceCpuUsPerDelivered: cpuPerMsg.map((v) => Number(v.toFixed(1))),
      instanceCpuUsPerDeliveredMean: mean(cpuPerMsg),
      instanceIdleCpuUsPerSecond: idleUsPerSecond.map((v) => Math.round(v)),
      instanceBusyCpuUsPerDeliveredMean: mean(busyPerMsg),
      redisCpuUsPerMessage: Number(((redisAfter - redisBefore) / messages).toFixed(1)),
      redisBusyCpuUsPerMessage: Number(
        ((redisAfter - redisBefore - idleRedisUsPerSecond * elapsed) / messages).toFixed(1),
      ),
    };
  } finally {
    await emitter.shutdown().catch(() => {});
    await emitterRedis.disconnect().catch(() => {});
    for (const ws of sockets) ws.close();
    for (const { proc } of procs) proc.kill('SIGKILL');
    await Promise.all(procs.map(({ proc }) => proc.exited));
  }
}

export const SCALING_CONFIGS: Array<[TScalingMode, TScalingTopology]> = [
  ['pattern', 'single'],
  ['rooms', 'single'],
  ['pattern', 'cluster'],
  ['rooms', 'cluster'],
];

/**
 * The four configurations, `rounds` times, alternating within each round (so a change in the
 * shared machine's load affects them alike). One redis-server and one cluster serve every round;
 * each run starts fresh instances.
 */
export async function scalingPhase(
  rounds: number,
  messages: number,
  rate: number,
  log: (line: string) => void,
  configs: Array<[TScalingMode, TScalingTopology]> = SCALING_CONFIGS,
): Promise<IScalingResult[]> {
  const needs = (t: TScalingTopology) => configs.some(([, topology]) => topology === t);
  const single = needs('single') ? await RedisServer.start() : undefined;
  const cluster = needs('cluster')
    ? await RedisCluster.start({ replicasPerMaster: 0, nodeTimeoutMs: 5_000 })
    : undefined;
  const results: IScalingResult[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [mode, topology] of configs) {
        const redis = topology === 'single' ? singleNode(single!) : clusterOf(cluster!);
        const result = { ...(await scalingRun(mode, topology, redis, messages, rate)), round };
        results.push(result);
        log(
          `scaling ${mode.padEnd(7)} ${result.pubSub.padEnd(11)} round ${round}: ${result.delivered} of ${messages} delivered, instance ${result.instanceBusyCpuUsPerDeliveredMean} µs/delivered (busy), Redis ${result.redisBusyCpuUsPerMessage} µs/message`,
        );
      }
    }
  } finally {
    await single?.stop();
    await cluster?.stop();
  }
  return results;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const log = (line: string) => console.error(line);
  if (flag('--rounds') !== undefined) {
    const results = await scalingPhase(
      Number(flag('--rounds')),
      Number(flag('--messages') ?? 8_000),
      Number(flag('--rate') ?? 4_000),
      log,
    );
    for (const r of results) console.log(JSON.stringify(r));
  } else {
    const [mode = 'pattern', topology = 'single', messagesArg = '20000', rateArg = '4000'] = args as [
      TScalingMode?,
      TScalingTopology?,
      string?,
      string?,
    ];
    const [result] = await scalingPhase(1, Number(messagesArg), Number(rateArg), log, [[mode, topology]]);
    console.log(JSON.stringify(result));
  }
  process.exit(0);
}
