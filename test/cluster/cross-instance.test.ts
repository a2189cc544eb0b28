// The cross-instance behaviour on a real Redis Cluster (3 masters, 3 replicas):
// three server instances and the emitter all connect through RedisClusterHelper.
// The bus uses classic Pub/Sub, which the cluster forwards to every node, so an
// instance hears a message whichever node its subscriber landed on.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Cluster, Redis } from 'ioredis';
import { RedisClusterHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisCluster } from '../support/redis-cluster.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

let cluster: RedisCluster;
let servers: ITestServer[] = [];
let emitterRedis: RedisClusterHelper;
let emitter: WebSocketEmitter;

beforeAll(async () => {
  // No failover here: a long node timeout keeps a busy machine's slow pong from
  // resetting a cluster bus link, which would drop the Pub/Sub messages crossing it.
  cluster = await RedisCluster.start({ nodeTimeoutMs: 5_000 });
  servers = await Promise.all(
    [0, 1, 2].map(() =>
      startServer({ redisCluster: { nodes: cluster.seeds }, validateRoomFn: ({ rooms }) => rooms }),
    ),
  );
  emitterRedis = new RedisClusterHelper({ name: 'emitter', nodes: cluster.seeds, logger: silentLogger });
  emitter = new WebSocketEmitter({ identifier: 'cluster-emitter', redisConnection: emitterRedis });
  await emitter.configure();
}, 30_000);

afterAll(async () => {
  await emitter?.shutdown();
  await emitterRedis?.disconnect();
  await Promise.all(servers.map((s) => s.stop()));
  await cluster?.stop();
});

async function joined(server: ITestServer, rooms: string[], user = 'u'): Promise<TestClient> {
  const client = await TestClient.authenticated(server.url, { token: 'ok', user });
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms } });
    await client.next('join');
  }
  return client;
}

/** Waits until every listed client has `event`, then a little longer, and checks each got it once. */
async function exactlyOnce(clients: TestClient[], event: string): Promise<void> {
  for (const client of clients) await client.next(event);
  await Bun.sleep(150);
  for (const client of clients) expect(client.all(event).length).toBe(1);
}

function closeAll(clients: TestClient[]): void {
  for (const client of clients) client.close();
}

describe('on a Redis Cluster: every instance is connected through RedisClusterHelper', () => {
  test('the bus clients are cluster clients and the subscribers are spread over nodes', async () => {
    for (const server of servers) {
      expect(server.redisHelper).toBeInstanceOf(RedisClusterHelper);
      expect(server.redisHelper!.getClient()).toBeInstanceOf(Cluster);
      expect(server.helper.getStats().bus).toBeDefined();
    }
    // Each node lists only its own connections: the three subscribers (three
    // patterns and ws:broadcast, ws:command, ws:instance:<id> each) sit on one or more nodes of the cluster.
    const subscribers: string[] = [];
    for (const port of cluster.livePorts) {
      const node = new Redis({ host: '127.0.0.1', port });
      const list = String(await node.call('CLIENT', 'LIST'));
      subscribers.push(...list.split('\n').filter((line) => / sub=3 psub=3 /.test(line)));
      await node.quit();
    }
    expect(subscribers.length).toBe(servers.length);
  });
});

describe('send() across three instances on a Redis Cluster', () => {
  test('to a room: members on every instance receive exactly once, outsiders not at all', async () => {
    const members = await Promise.all(servers.map((s) => joined(s, ['c-room'])));
    const outsider = await joined(servers[1]!, []);
    servers[0]!.helper.send({ destination: 'c-room', payload: { topic: 'news', data: { n: 1 } } });
    await exactlyOnce(members, 'news');
    for (const member of members) expect(member.all('news')[0]!.data).toEqual({ n: 1 });
    await expectSilence(outsider, 'news', 10);
    closeAll([...members, outsider]);
  });

  test('to a client id on each other instance, and on the sending one', async () => {
    const clients = await Promise.all(servers.map((s) => joined(s, [])));
    for (const [i, client] of clients.entries()) {
      servers[0]!.helper.send({ destination: client.id, payload: { topic: 'dm', data: `to-${i}` } });
    }
    await exactlyOnce(clients, 'dm');
    for (const [i, client] of clients.entries()) expect(client.all('dm')[0]!.data).toBe(`to-${i}`);
    closeAll(clients);
  });

  test("one publisher's messages to a room arrive in order on every instance", async () => {
    const members = await Promise.all(servers.map((s) => joined(s, ['ordered'])));
    const count = 200;
    for (let n = 0; n < count; n++) {
      servers[0]!.helper.send({ destination: 'ordered', payload: { topic: 'seq', data: n } });
    }
    for (let n = 0; n < count; n++) await emitter.toRoom({ room: 'ordered', event: 'eseq', data: n });
    const expected = Array.from({ length: count }, (_, n) => n);
    for (const member of members) {
      await member.until(() => member.all('seq').length >= count && member.all('eseq').length >= count);
      expect(member.all('seq').map((f) => f.data)).toEqual(expected);
      expect(member.all('eseq').map((f) => f.data)).toEqual(expected);
    }
    closeAll(members);
  });

  test('without destination: broadcast to every authenticated client on every instance', async () => {
    const clients = await Promise.all(servers.map((s) => joined(s, [])));
    const unauthenticated = await TestClient.connect(servers[2]!.url);
    servers[2]!.helper.send({ payload: { topic: 'hello-all', data: 1 } });
    await exactlyOnce(clients, 'hello-all');
    await expectSilence(unauthenticated, 'hello-all', 10);
    closeAll([...clients, unauthenticated]);
  });
});

describe('WebSocketEmitter on a Redis Cluster', () => {
  test('toClient / toUser / toRoom / broadcast reach clients on every instance exactly once', async () => {
    const workers = await Promise.all(servers.map((s) => joined(s, ['jobs'], 'worker')));
    const other = await joined(servers[1]!, [], 'someone-else');
    await emitter.toClient({ clientId: workers[2]!.id, event: 'one', data: 1 });
    await emitter.toUser({ userId: 'worker', event: 'user', data: 2 });
    await emitter.toRoom({ room: 'jobs', event: 'progress', data: { pct: 50 } });
    await emitter.broadcast({ event: 'all', data: 3 });
    await exactlyOnce([workers[2]!], 'one');
    await exactlyOnce(workers, 'user');
    await exactlyOnce(workers, 'progress');
    await exactlyOnce([...workers, other], 'all');
    expect(workers[0]!.all('one').length + workers[1]!.all('one').length).toBe(0);
    expect(other.all('user').length + other.all('progress').length).toBe(0);
    closeAll([...workers, other]);
  });

  test('toRoom and broadcast honour exclude on every instance', async () => {
    const keep = await joined(servers[0]!, ['ex']);
    const skipped = await Promise.all(servers.map((s) => joined(s, ['ex'])));
    const skippedIds = skipped.map((c) => c.id);
    await emitter.toRoom({ room: 'ex', event: 'r', data: 1, exclude: skippedIds });
    await emitter.broadcast({ event: 'b', data: 1, exclude: skippedIds.slice(1) });
    await exactlyOnce([keep], 'r');
    await exactlyOnce([keep, skipped[0]!], 'b');
    for (const client of skipped) expect(client.all('r').length).toBe(0);
    for (const client of skipped.slice(1)) expect(client.all('b').length).toBe(0);
    closeAll([keep, ...skipped]);
  });

  test('publishes the documented envelope on the documented channels, seen from every node', async () => {
    // One plain connection per master: classic Pub/Sub reaches each of them.
    const masters = (await cluster.topology()).filter((n) => n.role === 'master');
    const spies = masters.map(({ port }) => new Redis({ host: '127.0.0.1', port, lazyConnect: true }));
    const seen = spies.map(() => [] as Array<{ channel: string; message: unknown }>);
    for (const [i, spy] of spies.entries()) {
      // Connect first: ioredis writes a PSUBSCRIBE issued while its ready check is
      // in flight ahead of that check, whose INFO the server then refuses.
      await spy.connect();
      spy.on('pmessage', (_p, channel, raw) => {
        // Only this test's event: an earlier test's message may still be crossing the cluster bus.
        const message = JSON.parse(raw);
        if (message.event === 'envelope') seen[i]!.push({ channel, message });
      });
      await spy.psubscribe('ws:*');
    }
    await emitter.toRoom({ room: 'r1', event: 'envelope', data: { a: 1 } });
    await emitter.broadcast({ event: 'envelope', data: 0 });
    await eventually(() => seen.every((s) => s.length === 2));
    // Two channels may live on two nodes: their relative order is not promised.
    for (const s of seen) {
      expect(s.sort((x, y) => x.channel.localeCompare(y.channel)).reverse()).toEqual([
        {
          channel: 'ws:room:r1',
          message: { serverId: 'emitter', type: 'room', target: 'r1', event: 'envelope', data: { a: 1 } },
        },
        {
          channel: 'ws:broadcast',
          message: { serverId: 'emitter', type: 'broadcast', event: 'envelope', data: 0 },
        },
      ]);
    }
    await Promise.all(spies.map((spy) => spy.quit()));
  });

  test("every PUBLISH goes to the master owning its channel's hash slot", async () => {
    const ports = cluster.livePorts;
    const nodes = ports.map((port) => new Redis({ host: '127.0.0.1', port }));
    await Promise.all(nodes.map((node) => node.config('RESETSTAT')));
    for (let n = 0; n < 20; n++) await emitter.toRoom({ room: 'routed', event: 'e', data: n });
    const owner = await cluster.masterForKey('ws:room:routed');
    for (const [i, node] of nodes.entries()) {
      const stats = String(await node.info('commandstats'));
      const calls = Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      expect({ port: ports[i], calls }).toEqual({ port: ports[i], calls: ports[i] === owner ? 20 : 0 });
    }
    await Promise.all(nodes.map((node) => node.quit()));
  });
});
