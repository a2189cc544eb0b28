import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import Redis from 'ioredis';
import { FLEET_INDEX_KEY, fleetInstanceKey } from '../../src/fleet/keys.ts';
import { resolveFleetOptions } from '../../src/fleet/options.ts';
import { decodeFleetRecord, fleetTopRooms, readFleet } from '../../src/fleet/reader.ts';
import { largestRooms } from '../../src/fleet/top-rooms.ts';
import type { IFleetInstance } from '../../src/fleet/types.ts';
import { ROOMCAST_VERSION } from '../../src/fleet/version.ts';
import { spawnInstance } from '../support/child-instance.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const FIXTURE = `${import.meta.dir}/../cluster/fixtures/cluster-instance.ts`;

let redis: RedisServer;
let spy: Redis;
const processes = new Set<Subprocess>();

beforeAll(async () => {
  redis = await RedisServer.start();
  spy = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: false });
});
afterAll(async () => {
  for (const proc of processes) proc.kill('SIGKILL');
  spy.disconnect();
  await redis.stop();
});

async function fleet(): Promise<IFleetInstance[]> {
  return await readFleet(spy);
}

async function joined(url: string, user: string, rooms: string[]): Promise<TestClient> {
  const client = await TestClient.authenticated(url, { token: 'ok', user });
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms }, id: 'j' });
    await client.next('join', () => true);
  }
  return client;
}

describe('the fleet registry', () => {
  test('an instance announces its id, identifier, version, counts, rates and largest rooms; a shutdown removes it at once', async () => {
    const a = await startServer({
      identifier: 'fleet-a',
      redis: { host: '127.0.0.1', port: redis.port },
      fleet: { interval: 100, ttl: 1_000, topRooms: 2 },
      defaultRooms: [],
      validateRoomFn: ({ rooms }) => rooms,
    });
    try {
      const clients = [
        await joined(a.url, 'u1', ['big', 'mid', 'small']),
        await joined(a.url, 'u1', ['big', 'mid']),
        await joined(a.url, 'u2', ['big']),
      ];
      for (let n = 0; n < 5; n++) clients[0]!.send({ event: 'chat', data: { n } });
      let record: IFleetInstance | undefined;
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        record = (await fleet()).find((r) => r.id === a.helper.serverId);
        if (record?.connections === 3 && record.topRooms.length === 2) break;
        await Bun.sleep(50);
      }
      expect(record).toBeDefined();
      expect(record!.identifier).toBe('fleet-a');
      expect(record!.version).toBe(ROOMCAST_VERSION);
      expect(record!).toMatchObject({ connections: 3, authenticated: 3, users: 2, draining: false });
      // 3 named rooms + 3 own id rooms.
      expect(record!.rooms).toBe(6);
      expect(record!.topRooms).toEqual([
        { room: 'big', members: 3 },
        { room: 'mid', members: 2 },
      ]);
      expect(record!.expiresAt - record!.updatedAt).toBe(1_000);
      expect(record!.startedAt).toBeLessThanOrEqual(record!.updatedAt);
      // The TTL in Redis bounds the record's life even if nobody prunes.
      const pttl = await spy.pttl(fleetInstanceKey(a.helper.serverId));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1_000);
      for (const client of clients) client.close();
    } finally {
      await a.stop();
    }
    expect((await fleet()).some((r) => r.id === a.helper.serverId)).toBe(false);
    expect(await spy.zscore(FLEET_INDEX_KEY, a.helper.serverId)).toBeNull();
    expect(await spy.exists(fleetInstanceKey(a.helper.serverId))).toBe(0);
  });

  test('off by default: an instance without the option writes nothing', async () => {
    const before = await spy.zcard(FLEET_INDEX_KEY);
    const b = await startServer({ redis: { host: '127.0.0.1', port: redis.port } });
    try {
      await Bun.sleep(150);
      expect(await spy.exists(fleetInstanceKey(b.helper.serverId))).toBe(0);
      expect(await spy.zcard(FLEET_INDEX_KEY)).toBe(before);
    } finally {
      await b.stop();
    }
  });

  test('a SIGKILLed instance leaves the listing within its ttl; the survivors stay', async () => {
    const ttl = 1_000;
    const instances = await Promise.all(
      ['k1', 'k2', 'k3'].map(async (identifier) => {
        const port = await freePort();
        return spawnInstance({
          fixture: FIXTURE,
          port,
          processes,
          env: {
            ...process.env,
            PORT: String(port),
            REDIS_PORT: String(redis.port),
            IDENTIFIER: identifier,
            FLEET_INTERVAL: '200',
            FLEET_TTL: String(ttl),
          },
        });
      }),
    );
    const byIdentifier = async () => new Map((await fleet()).map((r) => [r.identifier, r]));
    let listed = await byIdentifier();
    const deadline = Date.now() + 5_000;
    while (!['k1', 'k2', 'k3'].every((id) => listed.has(id)) && Date.now() < deadline) {
      await Bun.sleep(50);
      listed = await byIdentifier();
    }
    expect([...listed.keys()].filter((id) => id.startsWith('k')).sort()).toEqual(['k1', 'k2', 'k3']);
    const victim = instances[1]!;
    const victimId = listed.get('k2')!.id;
    victim.proc.kill('SIGKILL');
    await victim.proc.exited;
    const killedAt = Date.now();
    let goneAt: number | undefined;
    while (Date.now() - killedAt < ttl + 2_000) {
      const now = await byIdentifier();
      if (!now.has('k2')) {
        goneAt = Date.now();
        expect(now.has('k1') && now.has('k3')).toBe(true);
        break;
      }
      await Bun.sleep(25);
    }
    expect(goneAt).toBeDefined();
    // Within the ttl (its last beat was at most one interval before the kill), plus the read's own time.
    expect(goneAt! - killedAt).toBeLessThanOrEqual(ttl + 100);
    // The reader pruned the index: no id of a dead instance stays behind.
    expect(await spy.zscore(FLEET_INDEX_KEY, victimId)).toBeNull();
    for (const instance of [instances[0]!, instances[2]!]) {
      instance.proc.kill('SIGKILL');
      await instance.proc.exited;
    }
  }, 20_000);
});

describe('fleet records and options', () => {
  test('largestRooms keeps the n largest in one pass, ties by name', () => {
    const rooms = [
      { room: 'c', members: 2 },
      { room: 'a', members: 5 },
      { room: 'b', members: 2 },
      { room: 'z', members: 0 },
      { room: 'd', members: 9 },
    ];
    expect(largestRooms(rooms, 3)).toEqual([
      { room: 'd', members: 9 },
      { room: 'a', members: 5 },
      { room: 'b', members: 2 },
    ]);
    expect(largestRooms(rooms, 0)).toEqual([]);
  });

  test('fleetTopRooms sums the rooms the instances announce', () => {
    const base = decodeFleetRecord(
      JSON.stringify({
        id: 'x',
        identifier: 'x',
        version: '1',
        startedAt: 1,
        updatedAt: 2,
        expiresAt: 3,
        connections: 0,
        authenticated: 0,
        users: 0,
        rooms: 0,
        rates: { inboundFrames: 0, publishes: 0, socketWrites: 0, connectionsOpened: 0 },
        topRooms: [],
        draining: false,
      }),
    )!;
    expect(base).toBeDefined();
    const one = {
      ...base,
      topRooms: [
        { room: 'r', members: 3 },
        { room: 's', members: 1 },
      ],
    };
    const two = { ...base, id: 'y', topRooms: [{ room: 's', members: 4 }] };
    expect(fleetTopRooms([one, two], 5)).toEqual([
      { room: 's', members: 5 },
      { room: 'r', members: 3 },
    ]);
  });

  test('a malformed or foreign record is skipped, not trusted', async () => {
    expect(decodeFleetRecord('not json')).toBeUndefined();
    expect(decodeFleetRecord('{"id":"x"}')).toBeUndefined();
    expect(decodeFleetRecord(`{"id":"x","pad":"${'x'.repeat(70_000)}"}`)).toBeUndefined();
    await spy
      .multi()
      .set(fleetInstanceKey('forged'), '{"id":"forged","connections":"lots"}', 'PX', 5_000)
      .zadd(FLEET_INDEX_KEY, Date.now() + 5_000, 'forged')
      .exec();
    expect((await fleet()).some((r) => r.id === 'forged')).toBe(false);
    await spy.multi().del(fleetInstanceKey('forged')).zrem(FLEET_INDEX_KEY, 'forged').exec();
  });

  test('bad options throw a clear error', () => {
    expect(() => resolveFleetOptions('[x]', { interval: 10 })).toThrow(/interval/);
    expect(() => resolveFleetOptions('[x]', { interval: 1_000, ttl: 500 })).toThrow(/ttl/);
    expect(() => resolveFleetOptions('[x]', { topRooms: 1_000 })).toThrow(/topRooms/);
    expect(resolveFleetOptions('[x]', true)).toEqual({
      interval: 5_000,
      ttl: 15_000,
      topRooms: 10,
      version: ROOMCAST_VERSION,
    });
  });

  test('ROOMCAST_VERSION is the package version', async () => {
    const pkg = (await Bun.file(`${import.meta.dir}/../../package.json`).json()) as { version: string };
    expect(ROOMCAST_VERSION).toBe(pkg.version);
  });
});
