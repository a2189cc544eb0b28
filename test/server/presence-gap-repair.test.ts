import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import type { IPresenceEvent } from '../../src/client/index.ts';
import type { IHistoryPolicy } from '../../src/index.ts';
import { closeAllClients, eventually, trackedClient } from '../client/support.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * A gap repair (the SDK re-joining a room it is in, with `since`) of a room that keeps both
 * history and presence is invisible to presence: two real instances on a real redis-server,
 * SDK clients watching, and the re-joiner a raw client sending the frame the SDK's gap repair sends.
 */

let redis: RedisServer;
const servers: ITestServer[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
}, 20_000);
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  closeAllClients();
  for (const server of servers.splice(0)) await server.stop();
});

const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('team') ? { size: 50, ttl: 60_000 } : null;

async function instance(): Promise<ITestServer> {
  const server = await startServer({
    redis: { host: '127.0.0.1', port: redis.port },
    validateRoomFn: ({ rooms }) => rooms,
    presenceFn: ({ room }) => room.startsWith('team'),
    historyFn,
  });
  servers.push(server);
  return server;
}

async function member(server: ITestServer, user: string) {
  const tracked = trackedClient(server.url, { auth: { token: 'ok', user } });
  const events: Array<[string, string]> = [];
  tracked.client.on('ws:presence:join', (e: IPresenceEvent) => events.push(['join', e.clientId]));
  tracked.client.on('ws:presence:leave', (e: IPresenceEvent) => events.push(['leave', e.clientId]));
  const info = await tracked.client.ready;
  return { ...tracked, id: info.id, events };
}

/** The redis-server's pid (it tells), so the test can pause it. */
async function redisPid(): Promise<number> {
  const proc = Bun.spawn(['redis-cli', '-p', String(redis.port), 'INFO', 'server'], { stdout: 'pipe' });
  const text = await new Response(proc.stdout).text();
  return Number(/process_id:(\d+)/.exec(text)![1]);
}

describe('gap repair of a room with history and presence', () => {
  test('the re-join with since sends no presence event to anyone and keeps the re-joiner’s presence subscription', async () => {
    const a = await instance();
    const b = await instance();
    const room = 'team-gap';
    const sameInstance = await member(a, 'sam');
    const otherInstance = await member(b, 'olga');
    for (const c of [sameInstance, otherInstance]) {
      await c.client.join(room);
      await c.client.subscribePresence(room);
    }
    await Bun.sleep(200); // olga's join, announced to sam: forget it
    for (const c of [sameInstance, otherInstance]) c.events.length = 0;
    // The re-joiner: a raw client sending exactly what the SDK's gap repair sends.
    const raw = await TestClient.authenticated(a.url, { token: 'ok', user: 'rita' });
    raw.send({ event: 'join', data: { rooms: [room] }, id: 'j1' });
    await raw.next('join');
    raw.send({ event: 'ws:presence:subscribe', data: { room }, id: 's1' });
    await raw.next('ws:presence:subscribe');
    await eventually(
      () => sameInstance.events.length === 1 && otherInstance.events.length === 1,
      5_000,
      'the re-joiner announced once',
    );
    a.helper.send({ destination: room, payload: { topic: 'note', data: { n: 1 } } });
    await raw.until(() => raw.all('note').length === 1, 'first publication');
    const first = raw.all('note')[0]! as unknown as { offset: number; epoch: string };
    b.helper.send({ destination: room, payload: { topic: 'note', data: { n: 2 } } });
    await raw.until(() => raw.all('note').length === 2, 'second publication');

    // What the re-joiner heard so far may include its own join (announced through Redis, so it can
    // arrive after its presence subscription): only what comes from now on counts.
    const heardBefore = {
      join: raw.all('ws:presence:join').length,
      leave: raw.all('ws:presence:leave').length,
    };

    // The gap repair: re-join with since the first publication.
    raw.send({
      event: 'join',
      data: { rooms: [room], since: { [room]: { offset: first.offset, epoch: first.epoch } } },
      id: 'j2',
    });
    const repaired = await raw.next('join', (data) => data.recovered !== undefined);
    expect(repaired.data.rooms).toEqual([room]);
    expect(repaired.data.recovered).toEqual({ [room]: true });
    await raw.until(() => raw.all('note').length === 3, 'the missed one replayed');

    // Nobody heard the re-joiner leave or join (and it heard nothing of itself).
    await Bun.sleep(300);
    expect(sameInstance.events).toEqual([['join', raw.id]]);
    expect(otherInstance.events).toEqual([['join', raw.id]]);
    expect(raw.all('ws:presence:join').slice(heardBefore.join)).toEqual([]);
    expect(raw.all('ws:presence:leave').slice(heardBefore.leave)).toEqual([]);
    for (const server of [a, b]) {
      const ids = (await server.helper.presence({ room })).map((m) => m.clientId).sort();
      expect(ids).toEqual([raw.id, sameInstance.id, otherInstance.id].sort());
    }

    // Its presence subscription is intact: newcomers on either instance are announced to it, once each.
    const late = await member(b, 'lena');
    await late.client.join(room);
    const later = await member(a, 'leo');
    await later.client.join(room);
    await raw.until(
      () => raw.all('ws:presence:join').length === heardBefore.join + 2,
      'the newcomers announced',
      5_000,
    );
    expect(
      raw
        .all('ws:presence:join')
        .slice(heardBefore.join)
        .map((f) => f.data.clientId)
        .sort(),
    ).toEqual([late.id, later.id].sort());
    // And its room subscription: live publications still arrive.
    b.helper.send({ destination: room, payload: { topic: 'note', data: { n: 3 } } });
    await raw.until(() => raw.all('note').length === 4, 'live again');
    expect(raw.all('note').map((f) => f.data.n)).toEqual([1, 2, 2, 3]);
    raw.close();
  }, 20_000);

  test('a client that disconnects during its gap repair (the history read held up) is announced as gone once, and leaves presence', async () => {
    const a = await instance();
    const b = await instance();
    const room = 'team-gap-close';
    const watcher = await member(b, 'walt');
    await watcher.client.join(room);
    await watcher.client.subscribePresence(room);
    await Bun.sleep(200); // its own join may be announced to it: forget it
    watcher.events.length = 0;
    const raw = await TestClient.authenticated(a.url, { token: 'ok', user: 'rita' });
    raw.send({ event: 'join', data: { rooms: [room] }, id: 'j1' });
    const position = (await raw.next('join')).data.positions[room];
    await eventually(() => watcher.events.length === 1, 5_000, 'the raw client announced');
    // Redis paused: the repair's history read cannot finish, so the client stays suspended from the room.
    const pid = await redisPid();
    process.kill(pid, 'SIGSTOP');
    try {
      raw.send({ event: 'join', data: { rooms: [room], since: { [room]: position } }, id: 'j2' });
      await Bun.sleep(100);
      raw.close();
      await Bun.sleep(100);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await eventually(() => watcher.events.length === 2, 8_000, 'the raw client announced as gone');
    expect(watcher.events).toEqual([
      ['join', raw.id],
      ['leave', raw.id],
    ]);
    for (const server of [a, b]) {
      expect((await server.helper.presence({ room })).map((m) => m.clientId)).toEqual([watcher.id]);
    }
    await Bun.sleep(300);
    expect(watcher.events).toHaveLength(2);
  }, 20_000);
});
