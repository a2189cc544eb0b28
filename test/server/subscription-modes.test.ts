// The `rooms` subscription mode against a real redis-server: an instance subscribes a room's
// channel only while it has local members, reaches clients and users through their own
// channels, answers a join only once the SUBSCRIBE is acknowledged, and restores everything
// after Redis restarts. A `pattern` instance shares the fleet (same channel names).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import type { IRedisBusStats } from '../../src/bus/cross-instance-bus.ts';
import { RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { DelayProxy } from '../support/delay-proxy.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

let redis: RedisServer;
let a: ITestServer; // rooms
let b: ITestServer; // rooms
let p: ITestServer; // pattern
let emitterRedis: RedisHelper;
let emitter: WebSocketEmitter;
let probe: Redis;

beforeAll(async () => {
  redis = await RedisServer.start();
  const at = { host: '127.0.0.1', port: redis.port };
  const allowAll = ({ rooms }: { rooms: string[] }) => rooms;
  a = await startServer({ redis: at, subscriptionMode: 'rooms', validateRoomFn: allowAll, defaultRooms: [] });
  b = await startServer({ redis: at, subscriptionMode: 'rooms', validateRoomFn: allowAll, defaultRooms: [] });
  p = await startServer({ redis: at, validateRoomFn: allowAll, defaultRooms: [] });
  emitterRedis = new RedisHelper({ name: 'emitter', ...at, logger: silentLogger });
  emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  await emitter.configure();
  probe = new Redis(at);
  probe.on('error', () => {}); // down during the restart test
}, 30_000);

afterAll(async () => {
  probe?.disconnect();
  await emitter?.shutdown();
  await emitterRedis?.disconnect();
  await a?.stop();
  await b?.stop();
  await p?.stop();
  await redis?.stop();
});

async function joined(url: string, rooms: string[], user = 'u'): Promise<TestClient> {
  const client = await TestClient.authenticated(url, { token: 'ok', user });
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms } });
    await client.next('join');
  }
  return client;
}

const stats = (server: ITestServer): IRedisBusStats => server.helper.getStats().bus!;

/** Subscribers of a channel on Redis (every instance's subscriber connection counts once). */
async function subscribers(channel: string): Promise<number> {
  const reply = (await probe.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

describe('rooms mode: delivery across instances', () => {
  test('send() to a room reaches members on a rooms instance and a pattern instance, once each', async () => {
    const onB = await joined(b.url, ['m-room']);
    const onP = await joined(p.url, ['m-room']);
    a.helper.send({ destination: 'm-room', payload: { topic: 'news', data: { n: 1 } } });
    expect((await onB.next('news')).data).toEqual({ n: 1 });
    expect((await onP.next('news')).data).toEqual({ n: 1 });
    await Bun.sleep(100);
    expect(onB.all('news').length).toBe(1);
    expect(onP.all('news').length).toBe(1);
    onB.close();
    onP.close();
  });

  test('send() to a client id, and the emitter to a client, a user, a room and everyone', async () => {
    const target = await joined(b.url, ['e-room'], 'user-e');
    a.helper.send({ destination: target.id, payload: { topic: 'dm', data: 'by-id' } });
    expect((await target.next('dm')).data).toBe('by-id');
    await emitter.toClient({ clientId: target.id, event: 'em', data: 'client' });
    await emitter.toUser({ userId: 'user-e', event: 'em', data: 'user' });
    await emitter.toRoom({ room: 'e-room', event: 'em', data: 'room' });
    await emitter.broadcast({ event: 'em', data: 'all' });
    await target.until(() => target.all('em').length === 4, '4 emitter messages');
    expect(target.all('em').map((f) => f.data)).toEqual(['client', 'user', 'room', 'all']);
    // A's own client, by user id from B.
    const other = await joined(a.url, [], 'user-f');
    await emitter.toUser({ userId: 'user-f', event: 'em', data: 'user-f' });
    expect((await other.next('em')).data).toBe('user-f');
    target.close();
    other.close();
  });

  test('an instance receives nothing of rooms, clients and users it has no one in', async () => {
    const onA = await joined(a.url, ['busy-room']);
    await Bun.sleep(50);
    const beforeB = stats(b).received;
    const beforeP = stats(p).received;
    for (let i = 0; i < 50; i++) {
      a.helper.send({ destination: 'busy-room', payload: { topic: 't', data: i } });
      await emitter.toClient({ clientId: onA.id, event: 't', data: i });
      await emitter.toUser({ userId: 'nobody-here', event: 't', data: i });
    }
    await onA.until(() => onA.all('t').length === 100, 'the messages');
    await eventually(() => stats(p).received - beforeP >= 150, 3_000, 'the pattern instance to hear all');
    expect(stats(b).received - beforeB).toBe(0);
    onA.close();
  });
});

describe('rooms mode: reference counting', () => {
  test('a room channel is subscribed while the instance has a member, and once per instance', async () => {
    const channel = 'ws:room:rc-room';
    const first = await joined(a.url, ['rc-room']);
    expect(await subscribers(channel)).toBe(1);
    const second = await joined(a.url, ['rc-room']);
    const onB = await joined(b.url, ['rc-room']);
    expect(await subscribers(channel)).toBe(2);
    first.send({ event: 'leave', data: { rooms: ['rc-room'] } });
    await first.next('leave');
    await Bun.sleep(30);
    expect(await subscribers(channel)).toBe(2); // `second` still holds it on A
    second.close();
    await eventually(() => a.helper.getClientsByRoom({ room: 'rc-room' }).length === 0);
    await Bun.sleep(30);
    expect(await subscribers(channel)).toBe(1);
    onB.close();
    await eventually(() => b.helper.getClientsByRoom({ room: 'rc-room' }).length === 0);
    await Bun.sleep(30);
    expect(await subscribers(channel)).toBe(0);
    first.close();
  });

  test('client, id-room and user channels follow the connection', async () => {
    const client = await joined(a.url, [], 'rc-user');
    const id = client.id;
    expect(await subscribers(`ws:client:${id}`)).toBe(1);
    expect(await subscribers(`ws:room:${id}`)).toBe(1);
    expect(await subscribers('ws:user:rc-user')).toBe(1);
    client.close();
    await eventually(() => a.helper.getClients({ id }) === undefined);
    await Bun.sleep(30);
    expect(await subscribers(`ws:client:${id}`)).toBe(0);
    expect(await subscribers(`ws:room:${id}`)).toBe(0);
    expect(await subscribers('ws:user:rc-user')).toBe(0);
  });

  test('joins and leaves in one turn are one SUBSCRIBE and one UNSUBSCRIBE', async () => {
    const client = await joined(a.url, []);
    const rooms = Array.from({ length: 40 }, (_, i) => `batch-${i}`);
    const commands: string[] = [];
    const base = new Redis({ host: '127.0.0.1', port: redis.port });
    const monitor = await base.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^(p?un)?subscribe$/i.test(args[0] ?? '') && args.some((x) => x.includes('batch-'))) {
        commands.push(`${args[0]!.toLowerCase()}:${args.length - 1}`);
      }
    });
    for (const room of rooms) a.helper.joinRoom({ clientId: client.id, room });
    await eventually(() => commands.length === 1, 3_000, 'the SUBSCRIBE');
    for (const room of rooms) a.helper.leaveRoom({ clientId: client.id, room });
    await eventually(() => commands.length === 2, 3_000, 'the UNSUBSCRIBE');
    expect(commands).toEqual(['subscribe:40', 'unsubscribe:40']);
    monitor.disconnect();
    base.disconnect();
    client.close();
  });
});

describe('rooms mode: the join seam', () => {
  test('a message published the moment a join reply arrives reaches the client (40 concurrent joins of fresh rooms, the joining instance 40 ms from Redis)', async () => {
    // `far` reaches Redis through a 40 ms link each way, A directly: A's PUBLISH, sent when the
    // reply arrives, gets to Redis long before a SUBSCRIBE sent at the join would. Only a reply
    // that waited for the acknowledgement makes every first message arrive.
    const proxy = new DelayProxy(redis.port, 40);
    const far = await startServer({
      redis: { host: '127.0.0.1', port: proxy.port },
      subscriptionMode: 'rooms',
      validateRoomFn: ({ rooms }) => rooms,
      defaultRooms: [],
    });
    try {
      const clients = await Promise.all(Array.from({ length: 40 }, () => joined(far.url, [])));
      const round = crypto.randomUUID().slice(0, 8);
      await Promise.all(
        clients.map(async (client, i) => {
          const room = `seam-${round}-${i % 20}`; // two joiners per room, racing each other
          client.send({ event: 'join', data: { rooms: [room] }, id: `j${i}` });
          await client.next('join');
          a.helper.send({ destination: room, payload: { topic: 'first', data: i } });
        }),
      );
      await Promise.all(clients.map((client, i) => client.next('first', (d) => d === i, 3_000)));
      for (const client of clients) client.close();
    } finally {
      await far.stop();
      proxy.stop();
    }
  }, 20_000);
});

describe('rooms mode: the connected seam', () => {
  test('messages sent from another instance the moment `connected` arrives reach the client: to its id, its user and a default room (30 concurrent connections, 40 ms from Redis)', async () => {
    // As at the join seam: `far` is 40 ms from Redis, A and the emitter are not. Only a
    // `connected` that waited for the client's own channels makes every first message arrive.
    const proxy = new DelayProxy(redis.port, 40);
    const round = crypto.randomUUID().slice(0, 8);
    const lobby = `lobby-${round}`;
    const far = await startServer({
      redis: { host: '127.0.0.1', port: proxy.port },
      subscriptionMode: 'rooms',
      defaultRooms: [lobby],
    });
    try {
      const clients = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const client = await TestClient.authenticated(far.url, { token: 'ok', user: `seam-${round}-${i}` });
          a.helper.send({ destination: client.id, payload: { topic: 'to-id', data: i } });
          await emitter.toUser({ userId: `seam-${round}-${i}`, event: 'to-user', data: i });
          return client;
        }),
      );
      a.helper.send({ destination: lobby, payload: { topic: 'to-lobby', data: round } });
      await Promise.all(
        clients.map(async (client, i) => {
          await client.next('to-id', (d) => d === i, 3_000);
          await client.next('to-user', (d) => d === i, 3_000);
          await client.next('to-lobby', (d) => d === round, 3_000);
        }),
      );
      for (const client of clients) client.close();
    } finally {
      await far.stop();
      proxy.stop();
    }
  }, 20_000);
});

describe('rooms mode: Redis restarts', () => {
  test('every wanted channel is subscribed again; channels released while down are not', async () => {
    const stays = await joined(b.url, ['restart-room'], 'restart-user');
    const leaves = await joined(b.url, ['gone-room']);
    await redis.kill();
    leaves.close();
    await eventually(() => b.helper.getClientsByRoom({ room: 'gone-room' }).length === 0);
    await redis.restart();
    await eventually(
      () => b.helper.getReadiness().ready && a.helper.getReadiness().ready,
      15_000,
      'reconnect',
    );
    await eventually(() => stats(b).reconnects > 0);
    // Subscribed again (poll: the restore runs on the subscriber's `ready`).
    const deadline = Date.now() + 5_000;
    while ((await subscribers('ws:room:restart-room')) !== 1 && Date.now() < deadline) await Bun.sleep(50);
    expect(await subscribers('ws:room:restart-room')).toBe(1);
    expect(await subscribers(`ws:client:${stays.id}`)).toBe(1);
    expect(await subscribers('ws:user:restart-user')).toBe(1);
    expect(await subscribers('ws:room:gone-room')).toBe(0);
    a.helper.send({ destination: 'restart-room', payload: { topic: 'after', data: 1 } });
    await emitter.toUser({ userId: 'restart-user', event: 'after', data: 2 });
    await emitter.broadcast({ event: 'after', data: 3 });
    await stays.until(() => stays.all('after').length === 3, 'three messages after the restart', 5_000);
    await expectSilence(stays, 'never');
    stays.close();
  }, 30_000);
});

describe('subscriptionMode option', () => {
  test('an unknown mode is refused with a clear message', async () => {
    await expect(startServer({ subscriptionMode: 'sharded' as never })).rejects.toThrow(
      /subscriptionMode must be one of "pattern", "rooms"/,
    );
  });
});
