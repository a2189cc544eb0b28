// Socket.IO 4 on Node with the Redis adapter, WebSocket transport only: the
// usual way to run it on several instances. Started with --expose-gc so the
// control channel can collect garbage before reading the resident set size.

import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server } from 'socket.io';

const EVENT = 'b';
const redisPort = Number(process.env.BENCH_REDIS_PORT);

const nowMs = () => performance.timeOrigin + performance.now();
const pads = new Map();
/** Same shape and size as the Bun servers' messages (see lib/shared.ts makeData). */
function makeData(seq, size) {
  const t = nowMs();
  const length = Math.max(0, size - (18 + String(seq).length + String(t).length));
  let p = pads.get(length);
  if (p === undefined) {
    p = 'x'.repeat(length);
    pads.set(length, p);
  }
  return { s: seq, t, p };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function reply(res, value) {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const httpServer = createServer(async (req, res) => {
  try {
    switch (req.url) {
      case '/ctl/cpu': {
        const { user, system } = process.cpuUsage();
        return reply(res, { user, system });
      }
      case '/ctl/memory': {
        for (let i = 0; i < 3; i++) {
          globalThis.gc?.();
          await sleep(50);
        }
        const usage = process.memoryUsage();
        return reply(res, { rss: usage.rss, heapUsed: usage.heapUsed });
      }
      case '/ctl/stats':
        return reply(res, { clients: io.of('/').sockets.size });
      case '/ctl/publish':
        publish(await readBody(req));
        return reply(res, { ok: true });
      case '/ctl/pace':
        await pace(await readBody(req));
        return reply(res, { ok: true });
      case '/ctl/exit':
        reply(res, { ok: true });
        setTimeout(() => process.exit(0), 10);
        return;
      default:
        res.writeHead(404);
        res.end();
    }
  } catch (error) {
    res.writeHead(500);
    res.end(String(error));
  }
});

// BENCH_CSR=1 (kind socketio-csr, the recovery phase): connection state recovery, which
// Socket.IO offers with its default in-memory adapter (a single instance), not the Redis one.
const CSR = process.env.BENCH_CSR === '1';
const pub = CSR ? undefined : new Redis({ host: '127.0.0.1', port: redisPort });
const sub = pub?.duplicate();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  ...(CSR ? { connectionStateRecovery: {} } : { adapter: createAdapter(pub, sub) }),
});

io.use((socket, next) => {
  const auth = socket.handshake.auth;
  if (auth?.token !== 'ok') return next(new Error('Authentication failed'));
  socket.data.userId = auth.user;
  next();
});

io.on('connection', (socket) => {
  socket.on('join', (rooms, ack) => {
    if (!Array.isArray(rooms)) return;
    socket.join(rooms);
    if (typeof ack === 'function') ack({ rooms });
  });
});

function publish(req) {
  for (let i = 0; i < req.count; i++) {
    const data = makeData(req.seq + i, req.size);
    switch (req.mode) {
      case 'room':
        io.local.to(req.room).emit(EVENT, data);
        break;
      case 'room-exclude': {
        const sender = io.of('/').sockets.get(req.exclude);
        // socket.to() leaves the socket itself out.
        if (sender) sender.to(req.room).local.emit(EVENT, data);
        else io.local.to(req.room).emit(EVENT, data);
        break;
      }
      case 'broadcast':
        io.local.emit(EVENT, data);
        break;
      case 'send':
        // Through the Redis adapter: local members now, the other instances via Pub/Sub.
        io.to(req.room).emit(EVENT, data);
        break;
    }
  }
}

function pace(req) {
  return new Promise((resolve) => {
    const start = performance.now();
    let seq = 0;
    const tick = () => {
      publish({ mode: 'send', room: req.room, count: 1, size: req.size, seq });
      seq++;
      if (seq >= req.count) return resolve();
      setTimeout(tick, Math.max(0, start + seq * req.intervalMs - performance.now()));
    };
    tick();
  });
}

const parent = Number(process.env.BENCH_PARENT_PID);
if (parent) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(3);
    }
  }, 1_000).unref();
}

if (pub && sub) await Promise.all([pub.ping(), sub.ping()]);
httpServer.listen(0, '127.0.0.1', () => {
  console.log(`READY ${httpServer.address().port}`);
});
