// Scaling benchmark: 4 instances, ROOMS rooms, each instance holding one member of each room of
// its quarter; an emitter publishes MESSAGES messages to uniformly random rooms at RATE per second.
// Measured per run: each instance's CPU time per message it delivered, Redis CPU (all masters), in
// the subscription mode and topology given. Short and bounded (the machine is shared).
//
//   bun bench/scaling/run.ts <pattern|rooms> <single|cluster> [messages=20000] [rate=4000]
// On the cluster (3 masters, no replicas) pattern mode runs classic Pub/Sub, rooms mode sharded.
import { Redis } from 'ioredis';
import { RedisClusterHelper, RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisCluster } from '../../test/support/redis-cluster.ts';
import { RedisServer } from '../../test/support/redis-server.ts';

const INSTANCES = 4;
const ROOMS = 1_000;
const [mode = 'pattern', topology = 'single', messagesArg = '20000', rateArg = '4000'] =
  process.argv.slice(2);
const MESSAGES = Number(messagesArg);
const RATE = Number(rateArg);

const single = topology === 'single' ? await RedisServer.start() : undefined;
const cluster =
  topology === 'cluster'
    ? await RedisCluster.start({ replicasPerMaster: 0, nodeTimeoutMs: 5_000 })
    : undefined;
const redisPorts = single ? [single.port] : cluster!.livePorts;
const redisArg = single
  ? `127.0.0.1:${single.port}`
  : `cluster:${cluster!.seeds.map((s) => `${s.host}:${s.port}`).join(',')}`;

const procs = await Promise.all(
  Array.from({ length: INSTANCES }, async () => {
    const proc = Bun.spawn(
      [process.execPath, new URL('./instance.ts', import.meta.url).pathname, mode, redisArg],
      {
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'inherit',
      },
    );
    const reader = proc.stdout.getReader();
    const { value } = await reader.read();
    const { port } = JSON.parse(new TextDecoder().decode(value).split('\n')[0]!) as { port: number };
    return { proc, port };
  }),
);

try {
  // Clients: instance i holds one member of each room in [i*250, (i+1)*250).
  const received = new Array(INSTANCES).fill(0) as number[];
  const perInstance = ROOMS / INSTANCES;
  const sockets: WebSocket[] = [];
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
  const emitterRedis = cluster
    ? new RedisClusterHelper({
        name: 'emitter',
        nodes: cluster.seeds,
        pubSub: mode === 'pattern' ? 'classic' : 'sharded',
        logger: silentLogger,
      })
    : new RedisHelper({ name: 'emitter', host: '127.0.0.1', port: single!.port, logger: silentLogger });
  const emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  await emitter.configure();

  const stats = () =>
    Promise.all(
      procs.map(
        async ({ port }) =>
          (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { cpuUs: number },
      ),
    );
  const redisCpu = async () => {
    let total = 0;
    for (const port of redisPorts) {
      const node = new Redis({ host: '127.0.0.1', port });
      const info = String(await node.info('cpu'));
      await node.quit();
      total +=
        Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
    }
    return total * 1e6;
  };

  const payload = { text: 'x'.repeat(40), n: 0 };
  // The instances' idle CPU (timers, the cluster client's slot refreshes), subtracted below.
  const idleFrom = await stats();
  const idleRedisFrom = await redisCpu();
  const idleStart = performance.now();
  await Bun.sleep(1_000);
  const idleTo = await stats();
  const idleSeconds = (performance.now() - idleStart) / 1000;
  const idleUsPerSecond = idleTo.map((s, i) => (s.cpuUs - idleFrom[i]!.cpuUs) / idleSeconds);
  const idleRedisUsPerSecond = ((await redisCpu()) - idleRedisFrom) / idleSeconds;
  const before = await stats();
  const redisBefore = await redisCpu();
  const started = performance.now();
  const batch = Math.max(1, Math.round(RATE / 100)); // every 10 ms
  for (let sent = 0; sent < MESSAGES; ) {
    const tick = performance.now();
    const publishes: Promise<unknown>[] = [];
    for (let k = 0; k < batch && sent < MESSAGES; k++, sent++) {
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
  while (received.reduce((a, b) => a + b, 0) < MESSAGES && Date.now() < deadline) await Bun.sleep(20);
  const elapsed = (performance.now() - started) / 1000;
  const after = await stats();
  const redisAfter = await redisCpu();
  const delivered = received.reduce((a, b) => a + b, 0);
  const cpuPerMsg = after.map((s, i) => (s.cpuUs - before[i]!.cpuUs) / Math.max(1, received[i]!));
  const busyPerMsg = after.map(
    (s, i) => (s.cpuUs - before[i]!.cpuUs - idleUsPerSecond[i]! * elapsed) / Math.max(1, received[i]!),
  );
  const mean = (values: number[]) => Number((values.reduce((a, b) => a + b, 0) / values.length).toFixed(1));
  const result = {
    mode,
    pubSub: cluster ? (mode === 'pattern' ? 'classic' : 'sharded') : 'single node',
    topology,
    messages: MESSAGES,
    delivered,
    seconds: Number(elapsed.toFixed(2)),
    instanceCpuUsPerDelivered: cpuPerMsg.map((v) => Number(v.toFixed(1))),
    instanceCpuUsPerDeliveredMean: mean(cpuPerMsg),
    instanceIdleCpuUsPerSecond: idleUsPerSecond.map((v) => Math.round(v)),
    instanceBusyCpuUsPerDeliveredMean: mean(busyPerMsg),
    redisCpuUsPerMessage: Number(((redisAfter - redisBefore) / MESSAGES).toFixed(1)),
    redisBusyCpuUsPerMessage: Number(
      ((redisAfter - redisBefore - idleRedisUsPerSecond * elapsed) / MESSAGES).toFixed(1),
    ),
  };
  console.log(JSON.stringify(result));
  for (const ws of sockets) ws.close();
  await emitter.shutdown();
  await emitterRedis.disconnect();
} finally {
  for (const { proc } of procs) proc.kill('SIGKILL');
  await single?.stop();
  await cluster?.stop();
}
