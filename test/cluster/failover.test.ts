// A Redis Cluster master is SIGKILLed under traffic: two server instances and
// the emitter keep publishing to one room every TICK_MS. The killed master owns
// the room channel's hash slot (where every PUBLISH / SPUBLISH to it goes) and holds
// instance A's subscriber connection (classic: moved there on purpose; sharded: the
// shard's subscribers of both instances are there by design), so the publishers and
// the subscribers have to move. Delivery must resume after the replica is promoted,
// with nothing crashing, and messages sent after recovery must arrive exactly once, in order.
// Run once per Pub/Sub kind, each on its own cluster.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { RedisClusterHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import type { TPubSubKind } from '../../src/redis/pubsub-kind.ts';
import { CLUSTER_SLOTS_REFRESH_MS } from '../../src/redis/redis-cluster-helper.ts';
import { figure, watchProcessErrors } from '../support/figures.ts';
import { RedisCluster } from '../support/redis-cluster.ts';
import { type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const TICK_MS = 15;
/** A master is marked failed (and its replica elected) this long after it went silent. */
const NODE_TIMEOUT_MS = 2_000;
/**
 * Ticks of traffic before the kill, so every path is known to work first. A count,
 * not a duration: on a loaded machine a tick takes longer than TICK_MS.
 */
const WARMUP_TICKS = 60;
/** The bound on "delivery is back" after the kill (node timeout + election + slot refresh). */
const RESUME_BOUND_MS = 15_000;
/** Traffic kept up after the promotion and the last path resuming, to check steady delivery. */
const AFTER_RESUME_MS = CLUSTER_SLOTS_REFRESH_MS + 1_500;

type TSource = 'a' | 'b' | 'e';
/** Paths through Redis: a source and the instance whose client receives. */
const PATHS = [
  { from: 'a', to: 'B' },
  { from: 'b', to: 'A' },
  { from: 'e', to: 'A' },
  { from: 'e', to: 'B' },
] as const;

function failoverSuite(pubSub: TPubSubKind): void {
  let cluster: RedisCluster;
  let a: ITestServer;
  let b: ITestServer;
  let emitterRedis: RedisClusterHelper;
  let emitter: WebSocketEmitter;
  const loggers = { a: recordingLogger(), b: recordingLogger() };

  beforeAll(async () => {
    cluster = await RedisCluster.start({ nodeTimeoutMs: NODE_TIMEOUT_MS });
    const server = (name: 'a' | 'b') =>
      startServer({
        // The connection name tells the instances' subscribers apart in CLIENT LIST.
        redisCluster: {
          nodes: cluster.seeds,
          pubSub,
          clusterOptions: { redisOptions: { connectionName: name } },
        },
        logger: loggers[name],
        validateRoomFn: ({ rooms }) => rooms,
      });
    a = await server('a');
    b = await server('b');
    emitterRedis = new RedisClusterHelper({
      name: 'emitter',
      nodes: cluster.seeds,
      pubSub,
      logger: silentLogger,
    });
    emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
    await emitter.configure();
  }, 30_000);

  afterAll(async () => {
    await emitter?.shutdown();
    await emitterRedis?.disconnect();
    await a?.stop();
    await b?.stop();
    await cluster?.stop();
  });

  /** The node (and client id there) holding the subscriber of the instance named `name`. */
  async function subscriberOf(name: string): Promise<{ port: number; id: string } | undefined> {
    for (const port of cluster.livePorts) {
      const node = new Redis({ host: '127.0.0.1', port });
      const list = String(await node.call('CLIENT', 'LIST'));
      await node.quit();
      const line = list
        .split('\n')
        .find((l) => l.includes(`name=ioredis-cluster(subscriber):${name} `) && / sub=3 psub=3 /.test(l));
      const id = line && /(?:^| )id=(\d+)/.exec(line)?.[1];
      if (id) return { port, id };
    }
    return undefined;
  }

  /**
   * ioredis puts a cluster's subscriber on a random node. Kills that connection
   * (CLIENT KILL) until it lands on a master; returns the master's port.
   */
  async function moveSubscriberToMaster(name: string): Promise<number> {
    for (let attempt = 0; attempt < 30; attempt++) {
      const at = await subscriberOf(name);
      if (at) {
        const self = (await cluster.topology(at.port)).find((n) => n.port === at.port);
        if (self?.role === 'master') return at.port;
        const node = new Redis({ host: '127.0.0.1', port: at.port });
        await node.call('CLIENT', 'KILL', 'ID', at.id);
        await node.quit();
      }
      await Bun.sleep(100);
    }
    throw new Error(`the subscriber of ${name} never landed on a master`);
  }

  /** A room whose channel's hash slot is served by the master on `port` (`after`: skip rooms up to it). */
  async function roomOwnedBy(port: number, after = -1): Promise<string> {
    for (let i = after + 1; i < 400; i++) {
      if ((await cluster.masterForKey(`ws:room:stream-${i}`)) === port) return `stream-${i}`;
    }
    throw new Error(`no room channel hashes to a slot of ${port}`);
  }

  /** A client in `room` that records when each message of each source arrived. */
  async function receiver(url: string, room: string) {
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: [room] } });
    await client.next('join');
    const arrivals: Record<TSource, Array<{ seq: number; at: number }>> = { a: [], b: [], e: [] };
    client.ws.addEventListener('message', (e) => {
      const frame = JSON.parse(String(e.data));
      if (frame.event === 'a' || frame.event === 'b' || frame.event === 'e') {
        arrivals[frame.event as TSource].push({ seq: frame.data, at: Date.now() });
      }
    });
    return { client, arrivals };
  }

  test('SIGKILL of a master under traffic: delivery resumes after promotion, exactly once afterwards', async () => {
    const killed =
      pubSub === 'classic'
        ? await moveSubscriberToMaster('a')
        : (await cluster.topology()).find((n) => n.role === 'master')!.port;
    const room = await roomOwnedBy(killed);
    // A room of the same master that a client of A joins only once that master is dead: its
    // subscription is made during the outage and must hold after the promotion.
    const lateRoom = await roomOwnedBy(killed, Number(room.slice('stream-'.length)));
    const lateJoiner = await TestClient.authenticated(a.url);
    let lateJoined: Promise<unknown> | undefined;
    const receivers = { A: await receiver(a.url, room), B: await receiver(b.url, room) };
    const errors = watchProcessErrors();

    const sentAt: number[] = [];
    let emitterRejected = 0;
    let killAt = 0;
    let promotion: { promoted: number; ms: number } | undefined;
    const resumedAt = (from: TSource, to: 'A' | 'B'): number | undefined =>
      receivers[to].arrivals[from].find((x) => sentAt[x.seq]! > killAt)?.at;
    const allResumed = () => killAt > 0 && PATHS.every((p) => resumedAt(p.from, p.to) !== undefined);

    let lastResume = 0;
    for (let seq = 0; ; seq++) {
      const now = Date.now();
      if (killAt === 0 && seq >= WARMUP_TICKS) {
        killAt = now;
        const { replicas } = await cluster.killMaster(killed);
        lateJoiner.send({ event: 'join', data: { rooms: [lateRoom] } });
        lateJoined = lateJoiner.next('join', undefined, RESUME_BOUND_MS);
        void cluster.waitForPromotion(replicas, killAt, RESUME_BOUND_MS).then((p) => (promotion = p));
      }
      if (killAt > 0 && now - killAt > RESUME_BOUND_MS) break;
      if (lastResume === 0 && promotion && allResumed()) lastResume = now;
      if (lastResume > 0 && now - lastResume > AFTER_RESUME_MS) break;
      sentAt[seq] = Date.now();
      a.helper.send({ destination: room, payload: { topic: 'a', data: seq } });
      b.helper.send({ destination: room, payload: { topic: 'b', data: seq } });
      emitter.toRoom({ room, event: 'e', data: seq }).catch(() => emitterRejected++);
      await Bun.sleep(TICK_MS);
    }
    await Bun.sleep(500); // let in-flight messages land
    errors.stop();

    const resume = PATHS.map((p) => ({ ...p, ms: (resumedAt(p.from, p.to) ?? Number.NaN) - killAt }));
    const resumeMs = Math.max(...resume.map((r) => r.ms));
    // The longest silence on any path from the kill on: what a client notices.
    const maxGapMs = Math.max(
      ...PATHS.map(({ from, to }) => {
        const times = [killAt, ...receivers[to].arrivals[from].map((x) => x.at).filter((t) => t > killAt)];
        return Math.max(...times.slice(1).map((t, i) => t - times[i]!));
      }),
    );
    const f = `cluster.failover.${pubSub}`;
    figure(`${f}.promotionMs`, promotion?.ms ?? Number.NaN);
    figure(`${f}.resumeMs`, resumeMs);
    for (const r of resume) figure(`${f}.resumeMs.${r.from}-to-${r.to}`, r.ms);
    figure(`${f}.maxGapMs`, maxGapMs);
    figure(`${f}.sentPerSource`, sentAt.length);
    figure(`${f}.emitterRejected`, emitterRejected);
    figure(`${f}.droppedWhileDisconnected.a`, a.helper.getStats().bus!.droppedWhileDisconnected);

    expect(errors.rejections).toEqual([]);
    expect(errors.exceptions).toEqual([]);
    for (const logger of Object.values(loggers)) {
      expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    }
    expect(promotion?.promoted).toBeGreaterThan(0);
    expect(resumeMs).toBeLessThan(RESUME_BOUND_MS);

    // Before the kill every message crossed once; from a settle point after the
    // last path resumed, every message crossed exactly once and in order.
    // Settled: the promoted replica is known to every client (one slot map refresh).
    const settledAt = killAt + Math.max(resumeMs, promotion!.ms) + CLUSTER_SLOTS_REFRESH_MS + 500;
    const settledFrom = sentAt.findIndex((t) => t >= settledAt);
    const lastSeq = sentAt.length - 1;
    expect(settledFrom).toBeGreaterThan(0);
    let lostDuringFault = 0;
    let duplicatedDuringFault = 0;
    for (const { from, to } of PATHS) {
      const seqs = receivers[to].arrivals[from].map((x) => x.seq);
      const before = seqs.filter((s) => sentAt[s]! < killAt - 200);
      expect(before).toEqual(Array.from({ length: before.length }, (_, i) => i));
      expect(before.length).toBeGreaterThan(WARMUP_TICKS / 2);
      const after = seqs.filter((s) => s >= settledFrom);
      expect(after).toEqual(Array.from({ length: lastSeq - settledFrom + 1 }, (_, i) => settledFrom + i));
      const during = seqs.filter((s) => s < settledFrom);
      duplicatedDuringFault += during.length - new Set(during).size;
      lostDuringFault += settledFrom - new Set(during).size;
    }
    figure(`${f}.lostDuringFault`, lostDuringFault);
    figure(`${f}.duplicatedDuringFault`, duplicatedDuringFault);

    if (pubSub === 'classic') {
      // Instance A's subscriber moved to a live node, with its subscriptions.
      const moved = await subscriberOf('a');
      expect(moved?.port).toBeDefined();
      expect(moved!.port).not.toBe(killed);
    } else {
      // Both instances' shard subscribers of the room's channel are on the promoted master.
      const node = new Redis({ host: '127.0.0.1', port: promotion!.promoted });
      const reply = (await node.call('PUBSUB', 'SHARDNUMSUB', `ws:room:${room}`)) as [string, number];
      await node.quit();
      expect(Number(reply[1])).toBe(2);
    }
    // The late joiner was answered, and messages to its room reach it from the other instance and
    // from the emitter: the subscription made while the master was down holds on the promoted one.
    expect(lateJoined).toBeDefined();
    await lateJoined;
    b.helper.send({ destination: lateRoom, payload: { topic: 'late', data: 'from-b' } });
    await emitter.toRoom({ room: lateRoom, event: 'late', data: 'from-emitter' });
    await lateJoiner.next('late', (d) => d === 'from-b', 5_000);
    await lateJoiner.next('late', (d) => d === 'from-emitter', 5_000);
    lateJoiner.close();
    for (const r of Object.values(receivers)) r.client.close();
  }, 60_000);
}

for (const pubSub of ['sharded', 'classic'] as const) {
  describe(`${pubSub} Pub/Sub`, () => failoverSuite(pubSub));
}
