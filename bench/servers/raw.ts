// The floor: Bun.serve with topic subscriptions and server.publish, a minimal
// authenticate message, and the smallest Redis relay that reaches a second
// instance. No validation beyond what the protocol needs, no timers, no indexes.

import type { ServerWebSocket } from 'bun';
import Redis from 'ioredis';
import { EVENT, type IPublishRequest, makeData } from '../lib/shared.ts';
import { control, watchParent } from './control.ts';

interface ISocketData {
  id: string;
  authed: boolean;
}

const ALL = 'all';
const CHANNEL_PREFIX = 'raw:';
const instance = process.env.BENCH_INSTANCE ?? 'A';
const redisPort = Number(process.env.BENCH_REDIS_PORT);

/**
 * The second floor (kind `raw-seeds`): besides the broadcast topic each socket also subscribes
 * its own id and the two default rooms, the four topics the seeds promise every client.
 */
const SEED_TOPICS = process.env.BENCH_RAW_SEED_TOPICS === '1';
const DEFAULT_ROOMS = ['ws-default', 'ws-notification'];

const sockets = new Map<string, ServerWebSocket<ISocketData>>();
const pub = new Redis({ host: '127.0.0.1', port: redisPort });
const sub = new Redis({ host: '127.0.0.1', port: redisPort });

const frameOf = (data: unknown): string => JSON.stringify({ event: EVENT, data });

const server = Bun.serve<ISocketData>({
  hostname: '127.0.0.1',
  port: 0,
  async fetch(req, srv) {
    const answer = await control(req, {
      clients: () => sockets.size,
      publish: (r) => publish(r),
    });
    if (answer) return answer;
    if (new URL(req.url).pathname === '/ws') {
      if (srv.upgrade(req, { data: { id: crypto.randomUUID(), authed: false } })) return undefined;
      return new Response('upgrade failed', { status: 500 });
    }
    return new Response('not found', { status: 404 });
  },
  websocket: {
    // The same settings the helper uses by default, so only the code differs.
    maxPayloadLength: 128 * 1024,
    idleTimeout: 60,
    backpressureLimit: 1024 * 1024,
    sendPings: true,
    publishToSelf: false,
    message(ws, raw) {
      const message = JSON.parse(String(raw)) as {
        event?: string;
        data?: { token?: string; rooms?: string[] };
      };
      if (!ws.data.authed) {
        if (message.event !== 'authenticate' || message.data?.token !== 'ok') {
          ws.close(4003, 'Authentication failed');
          return;
        }
        ws.data.authed = true;
        sockets.set(ws.data.id, ws);
        ws.subscribe(ALL);
        if (SEED_TOPICS) {
          ws.subscribe(ws.data.id);
          for (const room of DEFAULT_ROOMS) ws.subscribe(room);
        }
        ws.send(JSON.stringify({ event: 'connected', data: { id: ws.data.id } }));
        return;
      }
      if (message.event === 'join' && Array.isArray(message.data?.rooms)) {
        for (const room of message.data.rooms) ws.subscribe(room);
        ws.send(JSON.stringify({ event: 'join', data: { rooms: message.data.rooms } }));
      }
    },
    close(ws) {
      sockets.delete(ws.data.id);
    },
  },
});

/** Self-test of the harness (BENCH_DROP_SEQ=n): never emit message n, so the run must come out FAILED. */
const dropSeq = Number(process.env.BENCH_DROP_SEQ ?? -1);

function publish(req: IPublishRequest): void {
  for (let i = 0; i < req.count; i++) {
    if (req.seq + i === dropSeq && req.mode === 'room') continue;
    const frame = frameOf(makeData(req.seq + i, req.size));
    switch (req.mode) {
      case 'room':
        server.publish(req.room, frame);
        break;
      case 'room-exclude': {
        // Bun leaves the publishing socket out.
        const sender = req.exclude === undefined ? undefined : sockets.get(req.exclude);
        if (sender) sender.publish(req.room, frame);
        else server.publish(req.room, frame);
        break;
      }
      case 'broadcast':
        server.publish(ALL, frame);
        break;
      case 'send':
        server.publish(req.room, frame);
        // One character names the sending instance, so it can skip its own message.
        void pub.publish(CHANNEL_PREFIX + req.room, instance + frame);
        break;
    }
  }
}

sub.on('pmessage', (_pattern: string, channel: string, message: string) => {
  if (message[0] === instance) return;
  server.publish(channel.slice(CHANNEL_PREFIX.length), message.slice(1));
});
await sub.psubscribe(`${CHANNEL_PREFIX}*`);
await pub.ping();

watchParent();
console.log(`READY ${server.port}`);
