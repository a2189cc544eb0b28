import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import Redis from 'ioredis';
import type { IPresenceEvent } from '../../src/client/index.ts';
import { presenceWatchersKey } from '../../src/presence/keys.ts';
import { closeAllClients, eventually, trackedClient } from '../client/support.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';

/**
 * Presence events in Redis mode are published only for rooms some instance watches (has a
 * local subscriber to their events): two real servers, a real redis-server, SDK clients, and a
 * raw subscriber that sees every presence event crossing Redis.
 */

let redis: RedisServer;
let spy: Redis;
let plain: Redis;
const crossing: string[] = [];
const servers: ITestServer[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  spy = new Redis({ host: '127.0.0.1', port: redis.port });
  spy.on('pmessage', (_pattern, _channel, raw: string) => crossing.push(raw));
  await spy.psubscribe('ws:room:ws:presence-events:*');
  plain = new Redis({ host: '127.0.0.1', port: redis.port });
});
afterAll(async () => {
  spy.disconnect();
  plain.disconnect();
  await redis.stop();
});
afterEach(async () => {
  closeAllClients();
  for (const server of servers.splice(0)) await server.stop();
  crossing.length = 0;
});

async function instance(presenceTtl?: number): Promise<ITestServer> {
  const server = await startServer({
    redis: { host: '127.0.0.1', port: redis.port },
    validateRoomFn: ({ rooms }) => rooms,
    presenceFn: ({ room }) => room.startsWith('team'),
    ...(presenceTtl ? { presenceTtl } : {}),
  });
  servers.push(server);
  return server;
}

async function member(server: ITestServer, user: string) {
  const tracked = trackedClient(server.url, { auth: { token: 'ok', user } });
  const events: Array<[string, IPresenceEvent]> = [];
  tracked.client.on('ws:presence:join', (e) => events.push(['join', e]));
  tracked.client.on('ws:presence:leave', (e) => events.push(['leave', e]));
  const info = await tracked.client.ready;
  return { ...tracked, id: info.id, events };
}

/** Every write queued so far has reached Redis (a presence read flushes the queue first). */
async function settled(server: ITestServer, room: string): Promise<void> {
  await server.helper.presence({ room });
  await spy.ping();
  await Bun.sleep(30);
}

describe('presence events only for watched rooms (Redis mode)', () => {
  test('unwatched: joins and leaves are stored but nothing is published', async () => {
    const [a, b] = [await instance(), await instance()];
    const ann = await member(a, 'ann');
    const bob = await member(b, 'bob');
    await ann.client.join('team-1');
    await bob.client.join('team-1');
    await bob.client.leave('team-1');
    await settled(b, 'team-1');
    expect((await a.helper.presence({ room: 'team-1' })).map((m) => m.userId)).toEqual(['ann']);
    expect(crossing).toEqual([]);
  });

  test('a subscriber on one instance hears a join/leave on the other exactly once, from its subscribe answer on; unsubscribing stops the publishing', async () => {
    const [a, b] = [await instance(), await instance()];
    const ann = await member(a, 'ann');
    await ann.client.join('team-2');
    // Ann's own join is stored a turn after her join is answered: wait for it, so it is not a change
    // stored after her subscribe answer (which she would rightly hear).
    for (
      let waited = 0;
      (await a.helper.presence({ room: 'team-2' })).length === 0 && waited < 3_000;
      waited += 20
    )
      await Bun.sleep(20);
    await ann.client.subscribePresence('team-2');
    expect(await plain.hexists(presenceWatchersKey('team-2'), a.helper.serverId)).toBe(1);
    const bob = await member(b, 'bob');
    await bob.client.join('team-2');
    await eventually(() => ann.events.length === 1, 5_000, 'bob announced');
    await bob.client.leave('team-2');
    await eventually(() => ann.events.length === 2, 5_000, 'bob gone');
    expect(ann.events.map(([kind, e]) => [kind, e.clientId])).toEqual([
      ['join', bob.id],
      ['leave', bob.id],
    ]);
    expect(crossing).toHaveLength(2);

    await ann.client.unsubscribePresence('team-2');
    expect(await plain.exists(presenceWatchersKey('team-2'))).toBe(0);
    crossing.length = 0;
    await bob.client.join('team-2');
    await settled(b, 'team-2');
    expect(crossing).toEqual([]);
    expect(ann.events).toHaveLength(2);
  });

  test('a subscriber that disconnects, or whose instance shuts down, is no longer a watcher', async () => {
    const [a, b] = [await instance(), await instance()];
    const ann = await member(a, 'ann');
    await ann.client.join('team-3');
    await ann.client.subscribePresence('team-3');
    const cat = await member(b, 'cat');
    await cat.client.join('team-3');
    await cat.client.subscribePresence('team-3');
    expect(await plain.hlen(presenceWatchersKey('team-3'))).toBe(2);
    cat.client.close();
    await eventually(() => b.helper.getClients().size === 0, 5_000, 'cat gone');
    await settled(b, 'team-3');
    expect(await plain.hkeys(presenceWatchersKey('team-3'))).toEqual([a.helper.serverId]);
    await a.stop();
    servers.splice(servers.indexOf(a), 1);
    expect(await plain.exists(presenceWatchersKey('team-3'))).toBe(0);
  });

  test('a watch Redis lost is written again on the next heartbeat (every presenceTtl / 3)', async () => {
    const a = await instance(600);
    const b = await instance(600);
    const ann = await member(a, 'ann');
    await ann.client.join('team-4');
    await ann.client.subscribePresence('team-4');
    await plain.del(presenceWatchersKey('team-4'));
    const until = Date.now() + 2_000;
    while ((await plain.exists(presenceWatchersKey('team-4'))) === 0 && Date.now() < until)
      await Bun.sleep(20);
    expect(await plain.hkeys(presenceWatchersKey('team-4'))).toEqual([a.helper.serverId]);
    const bob = await member(b, 'bob');
    await bob.client.join('team-4');
    await eventually(() => ann.events.length === 1, 5_000, 'bob announced');
  });
});
