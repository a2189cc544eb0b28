import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { silentLogger } from '../../src/common/logger.ts';
import { FLEET_INDEX_KEY, fleetInstanceKey } from '../../src/fleet/keys.ts';
import { createHttpApi, type IHttpApi } from '../../src/http-api/index.ts';
import type { TPubSubKind } from '../../src/redis/pubsub-kind.ts';
import { RedisClusterHelper } from '../../src/redis/redis-cluster-helper.ts';
import { RedisCluster } from '../support/redis-cluster.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * The fleet registry and the HTTP API on a real Redis Cluster (three masters), with classic and
 * sharded Pub/Sub: the registry's keys share the `{fleet}` hash tag, so a beat is one MULTI and a
 * listing one MGET on one slot.
 */

const KEY = 'cluster-key-0123456789abcdef';
let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 0, nodeTimeoutMs: 5_000 });
}, 30_000);
afterAll(async () => {
  await cluster?.stop();
});

test('the registry keys live in one slot', async () => {
  expect(await cluster.masterForKey(FLEET_INDEX_KEY)).toBe(
    await cluster.masterForKey(fleetInstanceKey('any-id')),
  );
});

for (const pubSub of ['classic', 'sharded'] as TPubSubKind[]) {
  describe(`Redis Cluster, ${pubSub} Pub/Sub`, () => {
    let servers: ITestServer[] = [];
    let apiRedis: RedisClusterHelper;
    let api: IHttpApi;

    beforeAll(async () => {
      servers = await Promise.all(
        ['c-a', 'c-b'].map((identifier) =>
          startServer({
            identifier: `${identifier}-${pubSub}`,
            redisCluster: { nodes: cluster.seeds, pubSub },
            validateRoomFn: ({ rooms }) => rooms,
            fleet: { interval: 100, ttl: 1_000 },
          }),
        ),
      );
      apiRedis = new RedisClusterHelper({ name: 'api', nodes: cluster.seeds, pubSub, logger: silentLogger });
      api = createHttpApi({ redisConnection: apiRedis, keys: [KEY], logger: silentLogger });
      await api.start();
    }, 30_000);

    afterAll(async () => {
      await api?.stop();
      await apiRedis?.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    });

    const call = async (method: string, path: string, body?: unknown) => {
      const res = await api.fetch(
        new Request(`http://api${path}`, {
          method,
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
      return { status: res.status, json: (await res.json()) as any };
    };

    test('GET /instances lists both, GET /rooms/top merges them, POST /publish/room reaches both', async () => {
      const clients = await Promise.all(
        servers.map(async (server, n) => {
          const client = await TestClient.authenticated(server.url, { token: 'ok', user: `u${n}` });
          client.send({ event: 'join', data: { rooms: ['cluster-room'] }, id: 'j' });
          await client.next('join');
          return client;
        }),
      );
      const ids = servers.map((s) => s.helper.serverId).sort();
      let listed: any;
      for (let n = 0; n < 60; n++) {
        listed = await call('GET', '/instances');
        const ours = listed.json.instances?.filter((i: any) => ids.includes(i.id)) ?? [];
        if (ours.length === 2 && ours.every((i: any) => i.authenticated === 1)) break;
        await Bun.sleep(50);
      }
      expect(listed.status).toBe(200);
      expect(
        listed.json.instances.filter((i: any) => ids.includes(i.id)).map((i: any) => i.authenticated),
      ).toEqual([1, 1]);
      const top = await call('GET', '/rooms/top?limit=5');
      expect(top.json.rooms).toContainEqual({ room: 'cluster-room', members: 2 });
      expect(
        (await call('POST', '/publish/room', { room: 'cluster-room', event: 'hi', data: pubSub })).status,
      ).toBe(200);
      for (const client of clients) expect((await client.next('hi')).data).toBe(pubSub);
      for (const client of clients) client.close();
    });
  });
}
