// A roomcast server for the history probe (bench/probes/history-cost.ts). Rooms named `h-*` keep
// history; `plain-*` do not. Redis on REDIS_PORT when set, else single-instance. Reads commands on
// stdin, one per line, and answers each with one JSON line:
//   measure                 → { cpuUs, rss }
//   send <room> <n> <size>  → { sent } after n send()s in paced bursts (payload of about `size` bytes)

import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';

const quiet = () => {};
const logger = { debug: quiet, info: quiet, warn: console.error, error: console.error };
const redisPort = Number(process.env.REDIS_PORT ?? 0);

const server = Bun.serve<{ clientId: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response('starting', { status: 503 }),
  websocket: { message() {} },
});
const redis = redisPort
  ? new RedisHelper({ name: 'probe', host: '127.0.0.1', port: redisPort, autoConnect: false, logger })
  : undefined;
const helper = new WebSocketServerHelper({
  identifier: 'history-probe',
  server,
  logger,
  heartbeatTimeout: 600_000,
  ...(redis ? { redisConnection: redis } : {}),
  authenticateFn: () => ({ userId: 'u' }),
  validateRoomFn: ({ rooms }) => rooms,
  historyFn: ({ room }) => (room.startsWith('h-') ? { size: 1_000, ttl: 600_000 } : null),
});
await helper.configure();
server.reload({
  fetch: (req, srv) =>
    srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })
      ? undefined
      : new Response('no', { status: 400 }),
  websocket: helper.getBunWebSocketHandler() as never,
});

async function send(room: string, count: number, size: number): Promise<number> {
  const text = 'x'.repeat(Math.max(0, size - 40));
  for (let i = 0; i < count; i++) {
    helper.send({ destination: room, payload: { topic: 'm', data: { i, text } } });
    if (i % 10 === 9) await Bun.sleep(5); // paced: the clients must keep up, nothing may be dropped
  }
  return count;
}

console.log(JSON.stringify({ port: server.port }));
let pending = '';
let chain = Promise.resolve();
process.stdin.on('data', (chunk) => {
  pending += chunk.toString();
  while (pending.includes('\n')) {
    const line = pending.slice(0, pending.indexOf('\n')).trim();
    pending = pending.slice(pending.indexOf('\n') + 1);
    chain = chain.then(async () => {
      const [command, room, n, size] = line.split(' ');
      if (command === 'send') {
        console.log(JSON.stringify({ sent: await send(room!, Number(n), Number(size)) }));
      } else {
        const cpu = process.cpuUsage();
        console.log(JSON.stringify({ cpuUs: cpu.user + cpu.system, rss: process.memoryUsage().rss }));
      }
    });
  }
});
process.stdin.on('end', async () => {
  await helper.shutdown();
  process.exit(0);
});
