// One server instance of the scaling benchmark (a child process of run.ts).
// argv: <mode: pattern|rooms> <redis: host:port | cluster:host:port,...>
// Prints one JSON line { port } once configured; GET /stats answers its CPU time and bus counters.
import { RedisClusterHelper, RedisHelper, silentLogger, WebSocketServerHelper } from '../../src/index.ts';

const [mode, redisArg] = process.argv.slice(2) as ['pattern' | 'rooms', string];
const cluster = redisArg.startsWith('cluster:');
const nodes = redisArg
  .replace(/^cluster:/, '')
  .split(',')
  .map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) }));
// On the cluster: pattern mode needs classic Pub/Sub; rooms mode runs sharded.
const pubSub = mode === 'pattern' ? 'classic' : 'sharded';
const redis = cluster
  ? new RedisClusterHelper({ name: 'bench', nodes, pubSub, logger: silentLogger })
  : new RedisHelper({ name: 'bench', ...nodes[0]!, autoConnect: false, logger: silentLogger });

const server = Bun.serve<{ clientId: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response('starting', { status: 503 }),
  websocket: { message() {} },
});
const helper = new WebSocketServerHelper({
  identifier: 'bench',
  server,
  redisConnection: redis,
  subscriptionMode: mode,
  authenticateFn: () => ({ userId: crypto.randomUUID() }),
  validateRoomFn: ({ rooms }) => rooms,
  defaultRooms: [],
  logger: silentLogger,
  limits: false,
});
await helper.configure();
server.reload({
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === '/stats') {
      const cpu = process.cpuUsage();
      return Response.json({
        cpuUs: cpu.user + cpu.system,
        bus: helper.getStats().bus,
        clients: helper.getStats().clients,
      });
    }
    if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
    return new Response('no', { status: 400 });
  },
  websocket: helper.getBunWebSocketHandler() as never,
});
console.log(JSON.stringify({ port: server.port }));
// Exit with the orchestrator.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
