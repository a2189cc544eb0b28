// What Redis spends per published message as the number of `'pattern'`-mode instances grows: N
// subscriber connections, each holding the three patterns a `'pattern'` instance subscribes
// (`ws:room:* ws:client:* ws:user:*`), so every room message matches one pattern of each and goes to
// all N; against the same N connections in `'rooms'` mode, each subscribed to channels of its own,
// where a room message goes to the one connection holding that room. Redis CPU (`INFO cpu`, user +
// system) over the publishing, minus its idle CPU over as long, divided by the messages. The kinds
// alternate within each round on one fresh redis-server; the subscribers only count bytes.
//
//   bun bench/scaling/pattern-cost.ts [--subscribers 3,12,52,150] [--messages 8000] [--rate 4000] [--rounds 3]
import type { Socket } from 'bun';
import { Redis } from 'ioredis';
import { RedisServer } from '../../test/support/redis-server.ts';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1]! : fallback;
};
const COUNTS = arg('--subscribers', '3,12,52,150').split(',').map(Number);
const MESSAGES = Number(arg('--messages', '8000'));
const RATE = Number(arg('--rate', '4000'));
const ROUNDS = Number(arg('--rounds', '3'));
const ROOMS = 1_000;
const PATTERNS = ['ws:room:*', 'ws:client:*', 'ws:user:*'];
// About the size of a roomcast envelope for a short room message.
const PAYLOAD = JSON.stringify({ e: 'b', d: { s: 0, t: 0, p: 'x'.repeat(20) }, o: 'instance-0000' });
const room = (i: number) => `ws:room:r${String(i % ROOMS).padStart(4, '0')}`;

type TKind = 'pattern' | 'rooms';

const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const command = (...words: string[]) => `*${words.length}\r\n${words.map(bulk).join('')}`;
/** Bytes of one delivered message, as Redis (RESP2) writes it to a subscriber. */
const deliveredBytes = (kind: TKind) =>
  Buffer.byteLength(
    kind === 'pattern'
      ? `*4\r\n${bulk('pmessage')}${bulk(PATTERNS[0]!)}${bulk(room(0))}${bulk(PAYLOAD)}`
      : `*3\r\n${bulk('message')}${bulk(room(0))}${bulk(PAYLOAD)}`,
  );

interface ISubscriber {
  socket: Socket<{ bytes: number }>;
}

async function subscribers(port: number, kind: TKind, n: number): Promise<ISubscriber[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const socket = await Bun.connect<{ bytes: number }>({
        hostname: '127.0.0.1',
        port,
        data: { bytes: 0 },
        socket: {
          data(s, chunk) {
            s.data.bytes += chunk.length;
          },
        },
      });
      // 'rooms': connection k holds the rooms k, k + n, k + 2n, … and a client and a user channel.
      const channels = [`ws:client:c${k}`, `ws:user:u${k}`];
      for (let r = k; r < ROOMS; r += n) channels.push(room(r));
      socket.write(
        kind === 'pattern' ? command('PSUBSCRIBE', ...PATTERNS) : command('SUBSCRIBE', ...channels),
      );
      return { socket };
    }),
  );
}

async function measure(server: RedisServer, probe: Redis, kind: TKind, n: number) {
  const cpu = async () => {
    const info = String(await probe.info('cpu'));
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1]);
    return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
  };
  const subs = await subscribers(server.port, kind, n);
  const pubsub = async () => {
    const info = String(await probe.info('stats'));
    return kind === 'pattern'
      ? Number(/pubsub_patterns:(\d+)/.exec(info)![1])
      : Number(/pubsub_channels:(\d+)/.exec(info)![1]);
  };
  const wanted = kind === 'pattern' ? 3 * n : ROOMS + 2 * n;
  const subscribed = Date.now() + 10_000;
  while ((await pubsub()) < wanted && Date.now() < subscribed) await Bun.sleep(20);
  await Bun.sleep(200);
  for (const s of subs) s.socket.data.bytes = 0;
  const publisher = new Redis({ host: '127.0.0.1', port: server.port });
  await publisher.ping();
  const durationMs = (MESSAGES / RATE) * 1000;
  const idleBefore = await cpu();
  await Bun.sleep(durationMs);
  const idleUs = (await cpu()) - idleBefore;
  const before = await cpu();
  // Batches every 10 ms at the given rate, each a pipeline: the publisher stays ahead of no one.
  const perBatch = Math.max(1, Math.round(RATE / 100));
  const started = performance.now();
  for (let sent = 0; sent < MESSAGES; ) {
    const pipeline = publisher.pipeline();
    for (let i = 0; i < perBatch && sent < MESSAGES; i++, sent++) pipeline.publish(room(sent), PAYLOAD);
    await pipeline.exec();
    const due = started + (sent / RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
  }
  // Every subscriber has every message it should get (pattern: all; rooms: its rooms' share).
  const expectedBytes = MESSAGES * deliveredBytes(kind) * (kind === 'pattern' ? n : 1);
  const received = () => subs.reduce((total, s) => total + s.socket.data.bytes, 0);
  const drained = Date.now() + 20_000;
  while (received() < expectedBytes && Date.now() < drained) await Bun.sleep(20);
  const busyUs = (await cpu()) - before;
  const result = {
    kind,
    subscribers: n,
    patterns: kind === 'pattern' ? 3 * n : 0,
    messages: MESSAGES,
    deliveredAll: received() === expectedBytes,
    redisCpuUsPerMessage: Number(((busyUs - idleUs) / MESSAGES).toFixed(2)),
  };
  publisher.disconnect();
  for (const s of subs) s.socket.end();
  // The next kind starts with no subscriber of this one left.
  const gone = Date.now() + 5_000;
  while ((await pubsub()) > 0 && Date.now() < gone) await Bun.sleep(20);
  return result;
}

const server = await RedisServer.start();
const results: Awaited<ReturnType<typeof measure>>[] = [];
try {
  const probe = new Redis({ host: '127.0.0.1', port: server.port });
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of COUNTS) {
      for (const kind of ['pattern', 'rooms'] as const) {
        const r = await measure(server, probe, kind, n);
        results.push(r);
        console.error(JSON.stringify({ round, ...r }));
      }
    }
  }
  probe.disconnect();
} finally {
  await server.stop();
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
console.log(
  JSON.stringify(
    COUNTS.map((n) => {
      const of = (kind: TKind) =>
        results.filter((r) => r.subscribers === n && r.kind === kind).map((r) => r.redisCpuUsPerMessage);
      return {
        subscribers: n,
        patterns: 3 * n,
        patternRedisCpuUsPerMessage: median(of('pattern')),
        roomsRedisCpuUsPerMessage: median(of('rooms')),
        patternRange: [Math.min(...of('pattern')), Math.max(...of('pattern'))],
        roomsRange: [Math.min(...of('rooms')), Math.max(...of('rooms'))],
        deliveredAll: results.filter((r) => r.subscribers === n).every((r) => r.deliveredAll),
      };
    }),
    null,
    2,
  ),
);
