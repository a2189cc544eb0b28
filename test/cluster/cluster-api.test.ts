import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { RoomcastClient } from '../../src/client/client.ts';
import type { IPresenceEvent, IPresenceMember, RoomcastClientError } from '../../src/client/index.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { WebSocketEmitter } from '../../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { spawnInstance } from '../support/child-instance.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { eventually } from '../support/server.ts';

/**
 * The cluster API end to end: three instances as child processes (SIGKILL = a crash), one
 * real redis-server, SDK clients spread over them. Every delivery is counted per connection.
 */

const FIXTURE = `${import.meta.dir}/fixtures/cluster-instance.ts`;
const TTL = 1_000;

interface IInstance {
  port: number;
  url: string;
  http: string;
  proc: Subprocess;
}

let redis: RedisServer;
const processes = new Set<Subprocess>();
const clients = new Set<RoomcastClient>();

beforeAll(async () => {
  redis = await RedisServer.start();
}, 20_000);
afterAll(async () => {
  await redis.stop();
}, 20_000);
afterEach(async () => {
  for (const client of clients) client.close();
  clients.clear();
  for (const proc of processes) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  processes.clear();
  await flushRedis();
}, 20_000);

async function flushRedis(): Promise<void> {
  const proc = Bun.spawn(['redis-cli', '-p', String(redis.port), 'FLUSHALL'], { stdout: 'ignore' });
  await proc.exited;
}

async function startInstance(): Promise<IInstance> {
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    REDIS_PORT: String(redis.port),
    PRESENCE_TTL: String(TTL),
  };
  return await spawnInstance({ fixture: FIXTURE, port, env, processes });
}

const startInstances = (n: number) => Promise.all(Array.from({ length: n }, () => startInstance()));

async function call<T = unknown>(instance: IInstance, path: string, method = 'GET'): Promise<T> {
  const res = await fetch(`${instance.http}${path}`, { method });
  return (await res.json()) as T;
}

interface ITestClient {
  client: RoomcastClient;
  id: string;
  notes: number[];
  presenceEvents: Array<{ kind: 'join' | 'leave'; event: IPresenceEvent }>;
  errors: RoomcastClientError[];
}

async function connect(
  instance: IInstance,
  user: string,
  opts: { reconnect?: boolean } = {},
): Promise<ITestClient> {
  const errors: RoomcastClientError[] = [];
  const client = new RoomcastClient(instance.url, {
    auth: { token: 'ok', user },
    reconnect: opts.reconnect === false ? false : { initialDelay: 50, maxDelay: 200 },
    onError: (error) => errors.push(error),
  });
  clients.add(client);
  const info = await client.ready;
  const record: ITestClient = { client, id: info.id, notes: [], presenceEvents: [], errors };
  client.on('note', (data) => record.notes.push((data as { seq: number }).seq));
  client.on('ws:presence:join', (event) => record.presenceEvents.push({ kind: 'join', event }));
  client.on('ws:presence:leave', (event) => record.presenceEvents.push({ kind: 'leave', event }));
  return record;
}

const byId = (members: IPresenceMember[]) =>
  [...members].sort((a, b) => a.clientId.localeCompare(b.clientId));

describe('presence across three instances', () => {
  test('presence() is the same set on every instance; join/leave events arrive exactly once per change; a SIGKILLed instance’s members vanish within the TTL with leave events', async () => {
    const instances = await startInstances(3);
    const room = 'p-lobby';
    // A watcher on each instance subscribes to the room's events before the others join.
    const watchers = await Promise.all(instances.map((instance, n) => connect(instance, `watcher-${n}`)));
    for (const watcher of watchers) {
      expect(await watcher.client.join(room)).toEqual([room]);
      await watcher.client.subscribePresence(room);
    }
    await Bun.sleep(100); // the watchers' own joins are announced before the subscriptions; drop them
    for (const watcher of watchers) watcher.presenceEvents.length = 0;

    const members = await Promise.all(
      [0, 1, 2, 0, 1, 2].map((n, k) => connect(instances[n]!, `user-${k % 4}`)),
    );
    for (const member of members) await member.client.join(room);
    const everyone = [...watchers, ...members];
    const expected = byId(
      everyone.map((c) => ({
        clientId: c.id,
        userId: c.client.connection!.userId!,
        info: { name: `name-${c.client.connection!.userId}` },
      })),
    );
    await eventually(
      () => watchers.every((w) => w.presenceEvents.length === members.length),
      5_000,
      'every join announced to every watcher',
    );
    for (const instance of instances) {
      expect(byId(await call<IPresenceMember[]>(instance, `/presence?room=${room}`))).toEqual(expected);
      expect(await call(instance, `/stats?room=${room}`)).toEqual({ clients: 9, users: 7 });
    }
    // The SDK's view, from a member on each instance, is the same.
    for (const member of members.slice(0, 3)) {
      const seen = await member.client.presence(room);
      expect(byId(seen.members)).toEqual(expected);
      expect({ clients: seen.clients, users: seen.users }).toEqual({ clients: 9, users: 7 });
    }
    for (const watcher of watchers) {
      expect(watcher.presenceEvents.map((e) => e.kind)).toEqual(members.map(() => 'join'));
      expect(new Set(watcher.presenceEvents.map((e) => e.event.clientId))).toEqual(
        new Set(members.map((m) => m.id)),
      );
    }

    // A leave, a disconnect: one leave event each, everywhere.
    await members[0]!.client.leave(room);
    members[1]!.client.close();
    await eventually(
      () => watchers.every((w) => w.presenceEvents.length === members.length + 2),
      5_000,
      'two leaves announced',
    );
    for (const watcher of watchers) {
      const leaves = watcher.presenceEvents.filter((e) => e.kind === 'leave').map((e) => e.event.clientId);
      expect(leaves.sort()).toEqual([members[0]!.id, members[1]!.id].sort());
    }

    // SIGKILL instance 2: its members (watcher-2, members 2 and 5) vanish, with one leave event each.
    const victim = instances[2]!;
    const victims = [watchers[2]!.id, members[2]!.id, members[5]!.id];
    victim.proc.kill('SIGKILL');
    await victim.proc.exited;
    const killedAt = Date.now();
    await eventually(
      () =>
        watchers.slice(0, 2).every((w) => w.presenceEvents.length === members.length + 2 + victims.length),
      TTL * 3,
      'the dead instance’s members announced as gone',
    );
    const vanishedWithin = Date.now() - killedAt;
    expect(vanishedWithin).toBeLessThan(TTL + TTL / 3 + 500);
    for (const watcher of watchers.slice(0, 2)) {
      const gone = watcher.presenceEvents.slice(members.length + 2).map((e) => e.event);
      expect(gone.every((event) => event.room === room)).toBe(true);
      expect(gone.map((event) => event.clientId).sort()).toEqual([...victims].sort());
    }
    const alive = new Set([watchers[0]!.id, watchers[1]!.id, members[3]!.id, members[4]!.id]);
    for (const instance of instances.slice(0, 2)) {
      const now = await call<IPresenceMember[]>(instance, `/presence?room=${room}`);
      expect(new Set(now.map((m) => m.clientId))).toEqual(alive);
    }
    // No duplicate came later.
    await Bun.sleep(TTL);
    for (const watcher of watchers.slice(0, 2))
      expect(watcher.presenceEvents.length).toBe(members.length + 5);
  }, 30_000);

  test('bad input: presence of a room not joined is NOT_IN_ROOM, of a non-presence room PRESENCE_UNAVAILABLE, a malformed one INVALID_REQUEST; the client keeps working', async () => {
    const [instance] = await startInstances(1);
    const c = await connect(instance!, 'alice');
    await c.client.join(['p-joined', 'plain']);
    const refusal = async (promise: Promise<unknown>) =>
      ((await promise.catch((e) => e)) as RoomcastClientError).serverCode;
    expect(await refusal(c.client.presence('p-other'))).toBe('NOT_IN_ROOM');
    expect(await refusal(c.client.presence('plain'))).toBe('PRESENCE_UNAVAILABLE');
    expect(await refusal(c.client.presence('' as string))).toBe('INVALID_REQUEST');
    expect(await refusal(c.client.subscribePresence('p-other'))).toBe('NOT_IN_ROOM');
    expect((await c.client.presence('p-joined')).clients).toBe(1);
  }, 20_000);
});

describe('targeting on any instance', () => {
  test('send() to a user reaches each of its connections on three instances exactly once; exclusion holds everywhere', async () => {
    const instances = await startInstances(3);
    const bob = await Promise.all(instances.map((instance) => connect(instance, 'bob')));
    const others = await Promise.all(instances.map((instance) => connect(instance, 'carol')));
    for (const c of [...bob, ...others]) await c.client.join('room-x');
    // From each instance in turn: seq 0..29 to bob; 30..59 to the room minus bob's first and carol's last connection.
    for (let seq = 0; seq < 30; seq++) await call(instances[seq % 3]!, `/send?user=bob&seq=${seq}`, 'POST');
    const excluded = [bob[0]!.id, others[2]!.id];
    for (let seq = 30; seq < 60; seq++) {
      await call(instances[seq % 3]!, `/send?room=room-x&seq=${seq}&exclude=${excluded.join(',')}`, 'POST');
    }
    const toBob = Array.from({ length: 30 }, (_, n) => n);
    const toRoom = Array.from({ length: 30 }, (_, n) => n + 30);
    await eventually(
      () => bob[1]!.notes.length === 60 && others[0]!.notes.length === 30,
      5_000,
      'deliveries',
    );
    await Bun.sleep(200); // anything extra would have arrived by now
    // Exactly once each (messages sent from different instances may interleave: sorted).
    const got = (c: ITestClient) => [...c.notes].sort((a, b) => a - b);
    expect(got(bob[0]!)).toEqual(toBob);
    expect(got(bob[1]!)).toEqual([...toBob, ...toRoom]);
    expect(got(bob[2]!)).toEqual([...toBob, ...toRoom]);
    expect(got(others[0]!)).toEqual(toRoom);
    expect(got(others[1]!)).toEqual(toRoom);
    expect(got(others[2]!)).toEqual([]);
  }, 20_000);
});

async function emitterFor(): Promise<{ emitter: WebSocketEmitter; stop(): Promise<void> }> {
  const connection = new RedisHelper({
    name: 'emitter',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({ redisConnection: connection, logger: silentLogger });
  await emitter.configure();
  return {
    emitter,
    async stop() {
      await emitter.shutdown();
      await connection.disconnect();
    },
  };
}

const closed = (c: ITestClient) =>
  new Promise<{ code: number; reason: string }>((resolve) => {
    c.client.on('disconnect', (info) => resolve({ code: info.code, reason: info.reason }));
  });

describe('server commands on any instance', () => {
  test('the emitter disconnects a user with connections on two instances; the others stay', async () => {
    const instances = await startInstances(2);
    const dave = await Promise.all(
      instances.map((instance) => connect(instance, 'dave', { reconnect: false })),
    );
    const erin = await connect(instances[1]!, 'erin');
    const { emitter, stop } = await emitterFor();
    try {
      const closes = dave.map(closed);
      expect(await emitter.disconnect({ userId: 'dave', code: 4011, reason: 'banned' })).toEqual({
        instances: 2,
      });
      expect(await Promise.all(closes)).toEqual([
        { code: 4011, reason: 'banned' },
        { code: 4011, reason: 'banned' },
      ]);
      await Bun.sleep(100);
      expect(erin.client.state).toBe('connected');
      // Bad input is refused before anything is published.
      await expect(emitter.disconnect({ userId: 'dave', code: 1006 })).rejects.toThrow('close code');
      await expect(emitter.joinRooms({ userId: 'dave', rooms: ['ws:x'] })).rejects.toThrow('room names');
      await expect(emitter.joinRooms({ rooms: ['a'] })).rejects.toThrow('exactly one of clientId or userId');
    } finally {
      await stop();
    }
  }, 20_000);

  test('the emitter moves a user into a room on every instance; a room message then reaches each connection once', async () => {
    const instances = await startInstances(2);
    const frank = await Promise.all(instances.map((instance) => connect(instance, 'frank')));
    const { emitter, stop } = await emitterFor();
    try {
      expect((await emitter.joinRooms({ userId: 'frank', rooms: ['vip'] })).instances).toBe(2);
      await Bun.sleep(100); // the command is applied when each instance receives it
      await emitter.toRoom({ room: 'vip', event: 'note', data: { seq: 1 } });
      await call(instances[0]!, '/send?room=vip&seq=2', 'POST');
      await eventually(() => frank.every((c) => c.notes.length === 2), 3_000, 'both room messages');
      await emitter.leaveRooms({ userId: 'frank', rooms: ['vip'] });
      await Bun.sleep(100);
      await call(instances[1]!, '/send?room=vip&seq=3', 'POST');
      await Bun.sleep(200);
      for (const c of frank) expect([...c.notes].sort()).toEqual([1, 2]);
    } finally {
      await stop();
    }
  }, 20_000);

  test('the helper’s disconnect() and joinRooms() report the connections affected on every instance', async () => {
    const instances = await startInstances(3);
    const gina = await Promise.all(
      [0, 1, 1].map((n) => connect(instances[n]!, 'gina', { reconnect: false })),
    );
    expect(await call(instances[2]!, '/join?user=gina&room=gina-room', 'POST')).toEqual({
      affected: 3,
      instances: 3,
      complete: true,
    });
    const closes = gina.map(closed);
    expect(await call(instances[2]!, '/disconnect?user=gina', 'POST')).toEqual({
      affected: 3,
      instances: 3,
      complete: true,
    });
    for (const close of await Promise.all(closes)) expect(close).toEqual({ code: 4010, reason: 'kicked' });
    expect(await call(instances[0]!, '/disconnect?user=nobody', 'POST')).toEqual({
      affected: 0,
      instances: 3,
      complete: true,
    });
  }, 20_000);
});

describe('server → client acknowledgements', () => {
  test('an acknowledgement from a client on another instance resolves; a listener that never returns times out', async () => {
    const instances = await startInstances(2);
    const helen = await connect(instances[1]!, 'helen');
    const handled: number[] = [];
    const off = helen.client.on('please-ack' as never, async () => {
      await Bun.sleep(50);
      handled.push(Date.now());
    });
    // Asked on instance 0, the client is on instance 1.
    expect(await call(instances[0]!, `/ack?client=${helen.id}`, 'POST')).toEqual({ acked: true });
    expect(handled.length).toBe(1);
    // Locally too.
    expect(await call(instances[1]!, `/ack?client=${helen.id}`, 'POST')).toEqual({ acked: true });
    off();
    helen.client.on('please-ack' as never, () => new Promise(() => {}));
    const started = Date.now();
    expect(await call(instances[0]!, `/ack?client=${helen.id}&timeout=300`, 'POST')).toEqual({
      error: 'ACK_TIMEOUT',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // A client nobody holds: a timeout too (the command reaches no one).
    expect(await call(instances[0]!, '/ack?client=nobody&timeout=200', 'POST')).toEqual({
      error: 'ACK_TIMEOUT',
    });
  }, 20_000);
});
