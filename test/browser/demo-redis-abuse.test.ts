import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Redis from 'ioredis';
import { RoomcastClient } from '../../src/client/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type IDemoProcess, startDemo } from './demo-harness.ts';

// The demo lets any visitor enter any well-formed room name. Entering and leaving fresh rooms must
// not make Redis hold anything: joins and history reads write nothing, and the member lists the
// demo sends on every join and leave go to a companion room that keeps no history.

let redis: RedisServer;
let demo: IDemoProcess;
let reader: Redis;

beforeAll(async () => {
  redis = await RedisServer.start();
  demo = await startDemo({ REDIS_URL: redis.url });
  reader = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
  await reader.connect();
});

afterAll(async () => {
  reader?.disconnect();
  await demo?.stop();
  await redis?.stop();
});

/** Keys of history rooms (not the per-instance ones: presence liveness, instance registry). */
async function historyKeys(): Promise<string[]> {
  return (await reader.keys('ws:history*')).filter((key) => key !== 'ws:history:gen');
}

describe('the demo on Redis', () => {
  test('a visitor cycling through 300 fresh rooms leaves no history key behind', async () => {
    const config = (await (await fetch(`${demo.url}/api/config`)).json()) as { path: string };
    const url = `${demo.url.replace('http', 'ws')}${config.path}`;
    const client = new RoomcastClient(url, { auth: { name: 'mallory' }, reconnect: false });
    await client.ready;
    const before = await historyKeys();
    for (let batch = 0; batch < 30; batch++) {
      const rooms = Array.from({ length: 10 }, (_, n) => `fresh-${batch}-${n}`);
      await client.join(rooms);
      client.emit('rooms-changed'); // what the page says after a join: member lists are sent
      for (const room of rooms.slice(0, 2)) await client.history(room);
      await client.leave(rooms);
      client.emit('rooms-changed');
    }
    // Let the demo's queued member-list updates run.
    await Bun.sleep(500);
    expect(await historyKeys()).toEqual(before);

    // A chat line is a publication: that, and only that, creates a room's history.
    await client.join('fresh-chat');
    client.emit('chat', { room: 'fresh-chat', text: 'hello' });
    let after: string[] = [];
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && after.length === before.length) {
      after = await historyKeys();
      await Bun.sleep(50);
    }
    expect(after.length).toBeGreaterThan(before.length);
    expect(after.every((key) => before.includes(key) || key.includes('fresh-chat'))).toBe(true);
    client.close();
  });
});
