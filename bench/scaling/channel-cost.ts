// What a `rooms`-mode channel subscription costs Redis: memory and CPU per subscribed channel, and
// the round trip of one SUBSCRIBE batch, and the CPU and rate of unsubscribing them all again (what
// the last member leaving costs), on a fresh single redis-server.
//
//   bun bench/scaling/channel-cost.ts [channels=100000]
import { Redis } from 'ioredis';
import { RedisServer } from '../../test/support/redis-server.ts';

const CHANNELS = Number(process.argv[2] ?? 100_000);
const server = await RedisServer.start();
try {
  const probe = new Redis({ host: '127.0.0.1', port: server.port });
  const sub = new Redis({ host: '127.0.0.1', port: server.port, autoResubscribe: false });
  const memory = async () => Number(/used_memory:(\d+)/.exec(String(await probe.info('memory')))![1]);
  const cpu = async () => {
    const info = String(await probe.info('cpu'));
    return (
      (Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1])) * 1e6
    );
  };
  await sub.subscribe('ws:broadcast');
  const memBefore = await memory();
  const cpuBefore = await cpu();
  const started = performance.now();
  const batches: string[][] = [];
  for (let i = 0; i < CHANNELS; i += 1_000) {
    batches.push(
      Array.from(
        { length: Math.min(1_000, CHANNELS - i) },
        (_, k) => `ws:client:${crypto.randomUUID()}-${i + k}`,
      ),
    );
  }
  await Promise.all(batches.map((batch) => sub.subscribe(...batch)));
  const seconds = (performance.now() - started) / 1000;
  const memAfter = await memory();
  const cpuAfter = await cpu();
  // One fresh room's SUBSCRIBE round trip (what a first join waits for), median of 200.
  const rtts: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await sub.subscribe(`ws:room:rtt-${i}`);
    rtts.push(performance.now() - t);
  }
  rtts.sort((a, b) => a - b);
  // Leaving: the same channels unsubscribed in batches of 1,000.
  const leaveCpuBefore = await cpu();
  const leaveStarted = performance.now();
  await Promise.all(batches.map((batch) => sub.unsubscribe(...batch)));
  const leaveSeconds = (performance.now() - leaveStarted) / 1000;
  const leaveCpuAfter = await cpu();
  console.log(
    JSON.stringify({
      channels: CHANNELS,
      redisBytesPerChannel: Math.round((memAfter - memBefore) / CHANNELS),
      redisCpuUsPerChannel: Number(((cpuAfter - cpuBefore) / CHANNELS).toFixed(2)),
      subscribedChannelsPerSecond: Math.round(CHANNELS / seconds),
      subscribeRoundTripMsMedian: Number(rtts[100]!.toFixed(3)),
      subscribeRoundTripMsP99: Number(rtts[198]!.toFixed(3)),
      redisCpuUsPerUnsubscribedChannel: Number(((leaveCpuAfter - leaveCpuBefore) / CHANNELS).toFixed(2)),
      unsubscribedChannelsPerSecond: Math.round(CHANNELS / leaveSeconds),
    }),
  );
  sub.disconnect();
  probe.disconnect();
} finally {
  await server.stop();
}
