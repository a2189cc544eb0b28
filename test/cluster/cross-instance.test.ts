// The cross-instance behaviour on a real Redis Cluster (3 masters, 3 replicas):
// three server instances and the emitter all connect through RedisClusterHelper, once with
// sharded Pub/Sub (the default: SPUBLISH / SSUBSCRIBE, each channel on its slot's shard, so
// `rooms` subscriptions) and once with classic Pub/Sub (which the cluster forwards to every
// node, so an instance hears a message whichever node its subscriber landed on).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Cluster, Redis } from 'ioredis';
import { historyKeys } from '../../src/history/keys.ts';
import { type IHistoryPolicy, RedisClusterHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import type { TPubSubKind } from '../../src/redis/pubsub-kind.ts';
import { RedisCluster } from '../support/redis-cluster.ts';
import { eventually, type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

let cluster: RedisCluster;

beforeAll(async () => {
  // No failover here: a long node timeout keeps a busy machine's slow pong from
  // resetting a cluster bus link, which would drop the Pub/Sub messages crossing it.
  cluster = await RedisCluster.start({ nodeTimeoutMs: 5_000 });
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Rooms named `h-…` keep a history (positions, recovery). */
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 100, ttl: 60_000 } : null;

function fleetSuite(pubSub: TPubSubKind): void {
  let servers: ITestServer[] = [];
  let emitterRedis: RedisClusterHelper;
  let emitter: WebSocketEmitter;

  beforeAll(async () => {
    servers = await Promise.all(
      [0, 1, 2].map(() =>
        startServer({
          redisCluster: { nodes: cluster.seeds, pubSub },
          validateRoomFn: ({ rooms }) => rooms,
          historyFn,
        }),
      ),
    );
    emitterRedis = new RedisClusterHelper({
      name: 'emitter',
      nodes: cluster.seeds,
      pubSub,
      logger: silentLogger,
    });
    emitter = new WebSocketEmitter({
      identifier: 'cluster-emitter',
      redisConnection: emitterRedis,
      historyFn,
    });
    await emitter.configure();
  }, 30_000);

  afterAll(async () => {
    await emitter?.shutdown();
    await emitterRedis?.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
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
    test('the bus clients are cluster clients, subscribed the way the Pub/Sub kind says', async () => {
      for (const server of servers) {
        expect(server.redisHelper).toBeInstanceOf(RedisClusterHelper);
        expect(server.redisHelper!.getClient()).toBeInstanceOf(Cluster);
        expect(server.helper.getStats().bus).toBeDefined();
      }
      const lines: string[] = [];
      for (const port of cluster.livePorts) {
        const node = new Redis({ host: '127.0.0.1', port });
        lines.push(...String(await node.call('CLIENT', 'LIST')).split('\n'));
        await node.quit();
      }
      if (pubSub === 'classic') {
        // Each node lists only its own connections: the three subscribers (three patterns, and
        // ws:broadcast, ws:command, ws:instance:<id> each) sit on one or more nodes of the cluster.
        expect(lines.filter((line) => / sub=3 psub=3 /.test(line)).length).toBe(servers.length);
      } else {
        // No pattern anywhere, and no classic subscription but the server-command channels
        // (ws:command, ws:instance:<id>: one subscriber per instance); ws:broadcast is a shard
        // channel on its owner.
        expect(lines.filter((line) => / psub=[1-9]/.test(line))).toEqual([]);
        expect(lines.filter((line) => / sub=[1-9]/.test(line)).length).toBe(servers.length);
        expect(lines.filter((line) => / sub=[1-9]/.test(line) && !/ sub=2 /.test(line))).toEqual([]);
        const owner = new Redis({ host: '127.0.0.1', port: await cluster.masterForKey('ws:broadcast') });
        const reply = (await owner.call('PUBSUB', 'SHARDNUMSUB', 'ws:broadcast')) as [string, number];
        expect(Number(reply[1])).toBe(servers.length);
        await owner.quit();
      }
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

    test('publishes the documented envelope on the documented channels', async () => {
      if (pubSub === 'sharded') return await shardedEnvelopes(emitter);
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

    test("every PUBLISH / SPUBLISH goes to the master owning the room's slot", async () => {
      const command = pubSub === 'sharded' ? 'spublish' : 'publish';
      const ports = cluster.livePorts;
      const nodes = ports.map((port) => new Redis({ host: '127.0.0.1', port }));
      await Promise.all(nodes.map((node) => node.config('RESETSTAT')));
      for (let n = 0; n < 20; n++) await emitter.toRoom({ room: 'routed', event: 'e', data: n });
      // The emitter publishes to a room through the history script (it positions the publication
      // when the servers keep history for the room): it runs, and publishes, on the master of the
      // room's history keys. Sharded: those share the channel's slot; classic: PUBLISH reaches every
      // node from wherever it is issued.
      const owner = await cluster.masterForKey(historyKeys('routed', pubSub).meta);
      for (const [i, node] of nodes.entries()) {
        const stats = String(await node.info('commandstats'));
        const calls = Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
        expect({ port: ports[i], calls }).toEqual({ port: ports[i], calls: ports[i] === owner ? 20 : 0 });
      }
      await Promise.all(nodes.map((node) => node.quit()));
    });
  });
  if (pubSub === 'sharded') {
    describe('sharded only', () => {
      test('history rooms: positions assigned by the script that SPUBLISHes, recovery on another instance', async () => {
        // `h-{x}y` hashes by its own tag: its keys take the slot-tag form (history/keys.ts).
        for (const room of ['h-plain', 'h-{x}y']) {
          const first = await joined(servers[0]!, []);
          first.send({ event: 'join', data: { rooms: [room] }, id: 'j' });
          const position = (await first.next('join')).data.positions[room];
          for (let n = 1; n <= 5; n++) {
            if (n % 2) await emitter.toRoom({ room, event: 'h', data: n });
            else servers[1]!.helper.send({ destination: room, payload: { topic: 'h', data: n } });
          }
          await first.until(() => first.all('h').length === 5, 'five positioned messages');
          const frames = first.all('h') as unknown as Array<{ data: number; offset: number; epoch: string }>;
          expect(frames.map((f) => f.offset)).toEqual([1, 2, 3, 4, 5].map((k) => position.offset + k));
          first.close();
          await emitter.toRoom({ room, event: 'h', data: 6 });
          // Back on another instance, from the position after the third message.
          const again = await joined(servers[2]!, []);
          const since = { offset: frames[2]!.offset, epoch: frames[2]!.epoch };
          again.send({ event: 'join', data: { rooms: [room], since: { [room]: since } }, id: 'j' });
          const reply = await again.next('join');
          expect(reply.data.recovered[room]).toBe(true);
          await again.until(() => again.all('h').length === 3, 'the three missed messages');
          // Exactly what followed the third message, in offset order. Which of 4 and 5 came first is
          // up to Redis (send() does not wait for its script, the emitter's toRoom does).
          const recovered = again.all('h') as unknown as Array<{ data: number; offset: number }>;
          expect(recovered.map((f) => f.data)).toEqual([...frames.slice(3).map((f) => f.data), 6]);
          expect(recovered.map((f) => f.offset)).toEqual([4, 5, 6].map((k) => position.offset + k));
          again.close();
        }
      });

      test('a classic instance joining a sharded fleet logs the mix loudly', async () => {
        const logger = recordingLogger();
        const classic = await startServer({
          redisCluster: { nodes: cluster.seeds, pubSub: 'classic' },
          logger,
        });
        try {
          await eventually(() =>
            logger.lines.some((l) => l.level === 'error' && /Mixed Pub\/Sub fleet/.test(l.message)),
          );
        } finally {
          await classic.stop();
        }
      });

      test('subscriptionMode "pattern" with sharded Pub/Sub is refused with a clear message', async () => {
        await expect(
          startServer({ redisCluster: { nodes: cluster.seeds }, subscriptionMode: 'pattern' }),
        ).rejects.toThrow(/subscriptionMode "pattern" needs classic Pub\/Sub/);
      });
    });
  }
}

/** Sharded: a plain connection to each channel's owner, SSUBSCRIBEd, sees the documented envelope. */
async function shardedEnvelopes(emitter: WebSocketEmitter): Promise<void> {
  const channels = ['ws:room:r1', 'ws:broadcast'];
  const seen: Array<{ channel: string; message: unknown }> = [];
  const spies = await Promise.all(
    channels.map(async (channel) => {
      const spy = new Redis({ host: '127.0.0.1', port: await cluster.masterForKey(channel) });
      spy.on('smessage', (ch: string, raw: string) => {
        const message = JSON.parse(raw);
        if (message.event === 'envelope') seen.push({ channel: ch, message });
      });
      await spy.ssubscribe(channel);
      return spy;
    }),
  );
  await emitter.toRoom({ room: 'r1', event: 'envelope', data: { a: 1 } });
  await emitter.broadcast({ event: 'envelope', data: 0 });
  await eventually(() => seen.length === 2);
  expect(seen.sort((x, y) => y.channel.localeCompare(x.channel))).toEqual([
    {
      channel: 'ws:room:r1',
      message: { serverId: 'emitter', type: 'room', target: 'r1', event: 'envelope', data: { a: 1 } },
    },
    {
      channel: 'ws:broadcast',
      message: { serverId: 'emitter', type: 'broadcast', event: 'envelope', data: 0 },
    },
  ]);
  await Promise.all(spies.map((spy) => spy.quit()));
}

for (const pubSub of ['sharded', 'classic'] as const) {
  describe(`${pubSub} Pub/Sub`, () => fleetSuite(pubSub));
}
