import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Socket, TCPSocketListener } from 'bun';
import Redis from 'ioredis';
import { historyKeys } from '../../src/history/keys.ts';
import type { THistoryFn } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { startEmitter } from './support.ts';

// Redis runs a publication, then the connection drops before its reply arrives (Redis killed after
// persisting it, a network cut). ioredis re-sends unanswered commands after a reconnect by default:
// the publish script would run twice, and every client would get the message twice under two
// positions (found by the chaos test). A publishing connection must not re-send: the call fails,
// the publication happened once.

interface IPipe {
  upstream?: Socket<IPipe>;
  pending: Uint8Array[];
}

/** A TCP proxy to Redis that, when armed, lets the next reply be lost: it closes that client's connection instead. */
class ReplyCutter {
  readonly listener: TCPSocketListener<IPipe>;
  armed = false;
  cuts = 0;

  constructor(targetPort: number) {
    this.listener = Bun.listen<IPipe>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (client) => {
          client.data = { pending: [] };
          void Bun.connect<IPipe>({
            hostname: '127.0.0.1',
            port: targetPort,
            socket: {
              open: (upstream) => {
                client.data.upstream = upstream;
                for (const chunk of client.data.pending) upstream.write(chunk);
                client.data.pending = [];
              },
              data: (_upstream, chunk) => {
                if (this.armed) {
                  this.armed = false;
                  this.cuts++;
                  client.end(); // Redis ran it; its answer never arrives
                  return;
                }
                client.write(new Uint8Array(chunk));
              },
              close: () => {
                client.end();
              },
            },
            data: { pending: [] },
          });
        },
        data: (client, chunk) => {
          const bytes = new Uint8Array(chunk);
          if (client.data.upstream) client.data.upstream.write(bytes);
          else client.data.pending.push(bytes);
        },
        close: (client) => {
          client.data.upstream?.end();
        },
      },
    });
  }
}

const keepH: THistoryFn = ({ room }) => (room.startsWith('h-') ? { size: 100, ttl: 60_000 } : null);

let redisServer: RedisServer;
let cutter: ReplyCutter;
let reader: Redis;

beforeAll(async () => {
  redisServer = await RedisServer.start();
  cutter = new ReplyCutter(redisServer.port);
  reader = new Redis(redisServer.port, '127.0.0.1');
});

afterAll(async () => {
  reader.disconnect();
  cutter.listener.stop(true);
  await redisServer.stop();
});

describe('a publication whose reply is lost', () => {
  test('the emitter does not send it again after the reconnect: it ran once, and the call fails', async () => {
    const { emitter, stop } = await startEmitter(cutter.listener.port, keepH);
    try {
      expect((await emitter.toRoom({ room: 'h-once', event: 'm', data: 1 }))?.offset).toBe(1);
      cutter.armed = true;
      await expect(emitter.toRoom({ room: 'h-once', event: 'm', data: 2 })).rejects.toThrow();
      expect(cutter.cuts).toBe(1);
      // Long enough for a reconnect and a re-send, had there been one.
      await Bun.sleep(1_000);
      expect(await reader.hget(historyKeys('h-once').meta, 'offset')).toBe('2');
      // The connection is usable again, and the next publication follows without a second copy.
      let next: Awaited<ReturnType<typeof emitter.toRoom>>;
      for (let tries = 0; ; tries++) {
        try {
          next = await emitter.toRoom({ room: 'h-once', event: 'm', data: 3 });
          break;
        } catch (error) {
          if (tries > 50) throw error;
          await Bun.sleep(50);
        }
      }
      expect(next?.offset).toBe(3);
      const stream = await reader.xrange(historyKeys('h-once').stream, '-', '+');
      expect(stream.map(([, fields]) => fields[fields.indexOf('d') + 1])).toEqual(['1', '2', '3']);
    } finally {
      await stop();
    }
  });
});
