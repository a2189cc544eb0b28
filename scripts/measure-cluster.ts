// Bounded measurements of the cluster API (docs/cluster.md, "Measured"): a real redis-server,
// real Bun servers and real WebSocket clients in this process. Ratios matter, not absolutes:
// the machine is shared. Run: `bun run scripts/measure-cluster.ts` (about 30 s).
import { silentLogger } from '../src/common/logger.ts';
import { RedisPresenceStore } from '../src/presence/redis-store.ts';
import { RedisHelper } from '../src/redis/redis-helper.ts';
import { RedisServer } from '../test/support/redis-server.ts';
import { startServer } from '../test/support/server.ts';

const redis = await RedisServer.start();
const redisAt = { host: '127.0.0.1', port: redis.port };

/** One raw client: open, authenticate, optionally join; resolves with the socket once done. */
function connectJoin(url: string, room?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onerror = () => reject(new Error('socket error'));
    ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data));
      if (frame.event === 'connected') {
        if (!room) resolve(ws);
        else ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] } }));
      } else if (frame.event === 'join') resolve(ws);
    };
  });
}

async function joinRate(presence: boolean, count: number): Promise<number> {
  const srv = await startServer({
    redis: redisAt,
    limits: false,
    validateRoomFn: ({ rooms }) => rooms,
    ...(presence ? { presenceFn: () => true } : {}),
  });
  const sockets: WebSocket[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, () => connectJoin(srv.url, 'bench-room'));
    sockets.push(...(await Promise.all(batch)));
  }
  const perSecond = count / ((performance.now() - started) / 1000);
  for (const ws of sockets) ws.close();
  await srv.stop();
  return perSecond;
}

async function presenceLatency(members: number): Promise<{ median: number; p95: number }> {
  // Two instances' worth of members written through the real store (each with its own liveness).
  const connection = new RedisHelper({ name: 'm', ...redisAt, logger: silentLogger });
  const client = connection.getClient();
  await new Promise((r) => setTimeout(r, 200));
  const stores = ['instance-a', 'instance-b'].map(
    (serverId) => new RedisPresenceStore({ client: () => client, serverId, ttl: 60_000 }),
  );
  for (const store of stores) await store.start();
  for (let n = 0; n < members; n += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, k) =>
        stores[(n + k) % 2]!.add('big-room', {
          clientId: `c${n + k}`,
          userId: `u${(n + k) % 3000}`,
          info: { name: `n${n + k}` },
        }),
      ),
    );
  }
  const srv = await startServer({ redis: redisAt, presenceFn: () => true });
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    const list = await srv.helper.presence({ room: 'big-room' });
    times.push(performance.now() - started);
    if (list.length !== members) throw new Error(`expected ${members}, got ${list.length}`);
  }
  await srv.stop();
  await connection.disconnect();
  times.sort((a, b) => a - b);
  return { median: times[15]!, p95: times[28]! };
}

async function requestRate(connections: number, inFlight: number, ms: number): Promise<number> {
  const srv = await startServer({ limits: false, messageHandler: ({ message }) => message.data });
  const sockets = [];
  for (let i = 0; i < connections; i += 100) {
    sockets.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(100, connections - i) }, () => connectJoin(srv.url)),
      )),
    );
  }
  let answered = 0;
  const deadline = performance.now() + ms;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let next = 0;
          const send = () => ws.send(JSON.stringify({ event: 'echo', data: next, id: String(next++) }));
          ws.onmessage = () => {
            answered++;
            if (performance.now() < deadline) send();
            else if (--open === 0) resolve();
          };
          let open = inFlight;
          for (let k = 0; k < inFlight; k++) send();
        }),
    ),
  );
  const perSecond = answered / (ms / 1000);
  for (const ws of sockets) ws.close();
  await srv.stop();
  return perSecond;
}

const rounds = 3;
const off: number[] = [];
const on: number[] = [];
for (let r = 0; r < rounds; r++) {
  off.push(await joinRate(false, 500));
  on.push(await joinRate(true, 500));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `connect+auth+join (500 clients, Redis mode, ${rounds} alternating rounds): presence off ${median(off).toFixed(0)}/s, on ${median(on).toFixed(0)}/s, ratio ${(median(on) / median(off)).toFixed(2)} (rounds off ${off.map((x) => x.toFixed(0)).join(' ')}, on ${on.map((x) => x.toFixed(0)).join(' ')})`,
);
const latency = await presenceLatency(10_000);
console.log(
  `presence() of a 10 000-member room over two instances: median ${latency.median.toFixed(1)} ms, p95 ${latency.p95.toFixed(1)} ms (30 reads)`,
);
console.log(
  `request/response, 1 connection, 100 in flight, 2 s: ${(await requestRate(1, 100, 2_000)).toFixed(0)}/s`,
);
console.log(
  `request/response, 1 connection, 1 in flight, 2 s: ${(await requestRate(1, 1, 2_000)).toFixed(0)}/s`,
);
console.log(
  `request/response, 1 000 connections, 1 in flight each, 2 s: ${(await requestRate(1_000, 1, 2_000)).toFixed(0)}/s`,
);
await redis.stop();
process.exit(0);
