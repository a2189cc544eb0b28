import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { RoomcastClient } from '../../src/client/client.ts';
import type {
  IPublicationInfo,
  IRoomRecovery,
  RoomcastClientError,
  TUrlSource,
} from '../../src/client/index.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { WebSocketEmitter } from '../../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { spawnInstance } from '../support/child-instance.ts';
import { figure, watchProcessErrors } from '../support/figures.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { eventually } from '../support/server.ts';
import { historyPolicy } from './fixtures/history-instance.ts';

/**
 * Recovery end to end: instances run as child processes (SIGKILL = a crash),
 * a real redis-server, SDK clients that record every publication they deliver.
 * Each client's delivered offsets must be exactly the expected run (no gap,
 * no duplicate) and every recovery must say what really happened.
 */

const FIXTURE = `${import.meta.dir}/fixtures/history-instance.ts`;
/** ~200 publications a second: one every 5 ms. */
const PUBLISH_EVERY_MS = 5;
const CATCH_UP_BOUND_MS = 10_000;

interface IInstance {
  port: number;
  url: string;
  http: string;
  proc: Subprocess;
}

const processes = new Set<Subprocess>();
const redisServers = new Set<RedisServer>();
const clients = new Set<RoomcastClient>();
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const client of clients) client.close();
  clients.clear();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const proc of processes) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  processes.clear();
  for (const redis of redisServers) await redis.stop();
  redisServers.clear();
});

/** A redis-server owned by the test; with `appendOnlyDir`, AOF on and fsync on every write, files kept there. */
async function startRedis(opts: { appendOnlyDir?: string } = {}): Promise<RedisServer> {
  const aof = opts.appendOnlyDir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', opts.appendOnlyDir]
    : [];
  const redis = await RedisServer.start(undefined, aof);
  redisServers.add(redis);
  return redis;
}

/** Spawns an instance and waits for its `ready` line. */
async function startInstance(opts: { redis?: RedisServer; port?: number } = {}): Promise<IInstance> {
  const port = opts.port ?? (await freePort());
  const env: Record<string, string> = { ...process.env, PORT: String(port) } as Record<string, string>;
  if (opts.redis) env.REDIS_PORT = String(opts.redis.port);
  return await spawnInstance({ fixture: FIXTURE, port, env, processes });
}

async function kill(instance: IInstance): Promise<void> {
  instance.proc.kill('SIGKILL');
  await instance.proc.exited;
  processes.delete(instance.proc);
}

/** Whether the process is still running and answering HTTP. */
async function alive(instance: IInstance): Promise<boolean> {
  if (instance.proc.exitCode !== null) return false;
  const res = await fetch(`${instance.http}/health`).catch(() => undefined);
  return res !== undefined;
}

/** An SDK client that records what it delivers from one room. */
interface IRecorder {
  client: RoomcastClient;
  /** `seq` of every delivered tick, in delivery order. */
  seqs: number[];
  offsets: number[];
  infos: IPublicationInfo[];
  epochs: Set<string>;
  recoveries: IRoomRecovery[];
  errors: RoomcastClientError[];
}

async function recorder(url: TUrlSource, room: string): Promise<IRecorder> {
  const rec: IRecorder = {
    seqs: [],
    offsets: [],
    infos: [],
    epochs: new Set(),
    recoveries: [],
    errors: [],
    client: undefined as never,
  };
  rec.client = new RoomcastClient(url, {
    auth: { token: 'ok' },
    reconnect: { initialDelay: 50, maxDelay: 300 },
    onError: (error) => rec.errors.push(error),
    onRecovery: (recovery) => rec.recoveries.push(recovery),
  });
  clients.add(rec.client);
  rec.client.on('tick', (data, publication) => {
    if (publication?.room !== room) return;
    rec.seqs.push((data as { seq: number }).seq);
    rec.offsets.push(publication.offset);
    rec.infos.push(publication);
    rec.epochs.add(publication.epoch);
  });
  await rec.client.ready;
  expect(await rec.client.join(room)).toEqual([room]);
  return rec;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** An emitter on `redis` with the instances' history policy. */
async function emitterOn(redis: RedisServer): Promise<WebSocketEmitter> {
  const connection = new RedisHelper({
    name: 'emitter',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({
    redisConnection: connection,
    logger: silentLogger,
    historyFn: historyPolicy,
  });
  await emitter.configure();
  cleanups.push(async () => {
    await emitter.shutdown();
    await connection.disconnect();
  });
  return emitter;
}

/**
 * Publishes `tick { seq }` at ~200/s until `count` were accepted, calling
 * `during(accepted)` after each; a rejected publish (Redis down) is counted and retried later.
 */
async function stream(
  emitter: WebSocketEmitter,
  room: string,
  count: number,
  during: (accepted: number) => Promise<void> | void = () => {},
  every = PUBLISH_EVERY_MS,
): Promise<{ rejected: number }> {
  let accepted = 0;
  let rejected = 0;
  while (accepted < count) {
    try {
      await emitter.toRoom({ room, event: 'tick', data: { seq: accepted + 1 } });
      accepted++;
    } catch {
      rejected++;
    }
    await during(accepted);
    await Bun.sleep(every);
  }
  return { rejected };
}

function expectExactRun(rec: IRecorder, from: number, to: number): void {
  expect(rec.offsets).toEqual(range(from, to));
}

describe('history recovery end to end', () => {
  test('SIGKILL of an instance mid-stream: every client moves to the other one and gets exactly 1..N, recovered', async () => {
    const CLIENTS = 20;
    const TOTAL = 600;
    const KILL_AT = 200;
    const errors = watchProcessErrors();
    const redis = await startRedis();
    const a = await startInstance({ redis });
    const b = await startInstance({ redis });
    const emitter = await emitterOn(redis);
    const recs = await Promise.all(
      Array.from({ length: CLIENTS }, () => recorder([a.url, b.url], 'feed-kill')),
    );
    expect(recs.every((rec) => rec.client.url === a.url)).toBe(true);

    let killedAt = 0;
    await stream(emitter, 'feed-kill', TOTAL, async (accepted) => {
      if (accepted === KILL_AT && killedAt === 0) {
        killedAt = Date.now();
        await kill(a);
      }
    });
    await eventually(
      () => recs.every((rec) => rec.offsets.at(-1) === TOTAL),
      CATCH_UP_BOUND_MS,
      'every client has the last publication',
    );
    const caughtUpMs = Date.now() - killedAt;
    await Bun.sleep(200); // anything late (a duplicate) would show up now

    for (const rec of recs) {
      expect(rec.client.url).toBe(b.url);
      expectExactRun(rec, 1, TOTAL);
      expect(rec.seqs).toEqual(range(1, TOTAL));
      expect(rec.recoveries.length).toBeGreaterThanOrEqual(1);
      expect(rec.recoveries.every((r) => r.recovered)).toBe(true);
    }
    const recoveredCounts = recs.map((rec) => rec.recoveries.reduce((sum, r) => sum + r.recoveredCount, 0));
    figure('history-kill.clients', CLIENTS);
    figure('history-kill.publications', TOTAL);
    figure('history-kill.recovered-per-client.min', Math.min(...recoveredCounts));
    figure('history-kill.recovered-per-client.max', Math.max(...recoveredCounts));
    figure('history-kill.kill-to-all-caught-up-ms', caughtUpMs);
    errors.stop();
    expect(errors.rejections).toEqual([]);
    expect(errors.exceptions).toEqual([]);
  }, 40_000);

  test('offline for longer than the retained window (20 publications): recovered false, live again from the new position', async () => {
    const redis = await startRedis();
    const a = await startInstance({ redis });
    const emitter = await emitterOn(redis);
    const rec = await recorder(a.url, 'short-window');
    await stream(emitter, 'short-window', 10);
    await eventually(() => rec.offsets.length === 10, 3_000, 'first ten');

    rec.client.close();
    await stream(emitter, 'short-window', 50); // 30 more than the room keeps
    await rec.client.connect();
    await eventually(() => rec.recoveries.length === 1, 3_000, 'the recovery outcome');
    expect(rec.recoveries[0]).toMatchObject({ room: 'short-window', recovered: false, recoveredCount: 0 });
    expect(rec.recoveries[0]!.position.offset).toBe(60);
    await stream(emitter, 'short-window', 5);
    await eventually(() => rec.offsets.length === 15, 3_000, 'live again');
    // Nothing of the lost stretch was delivered, nothing twice.
    expect(rec.offsets).toEqual([...range(1, 10), ...range(61, 65)]);
  }, 20_000);

  test('offline for longer than the retained time (300 ms): recovered false', async () => {
    const redis = await startRedis();
    const a = await startInstance({ redis });
    const emitter = await emitterOn(redis);
    const rec = await recorder(a.url, 'brief-window');
    await stream(emitter, 'brief-window', 5);
    await eventually(() => rec.offsets.length === 5, 3_000, 'first five');
    rec.client.close();
    await stream(emitter, 'brief-window', 5);
    await Bun.sleep(800); // the missed publications are now older than the room keeps them
    await rec.client.connect();
    await eventually(() => rec.recoveries.length === 1, 3_000, 'the recovery outcome');
    expect(rec.recoveries[0]).toMatchObject({ room: 'brief-window', recovered: false, recoveredCount: 0 });
    expect(rec.recoveries[0]!.position.offset).toBe(10);
    expect(rec.offsets).toEqual(range(1, 5));
  }, 20_000);

  test('offline inside the window on the same Redis: recovered true with the exact count', async () => {
    const redis = await startRedis();
    const a = await startInstance({ redis });
    const emitter = await emitterOn(redis);
    const rec = await recorder(a.url, 'short-inside');
    await stream(emitter, 'short-inside', 5);
    await eventually(() => rec.offsets.length === 5, 3_000, 'first five');
    rec.client.close();
    await stream(emitter, 'short-inside', 15);
    await rec.client.connect();
    await eventually(() => rec.recoveries.length === 1, 3_000, 'the recovery outcome');
    expect(rec.recoveries[0]).toMatchObject({ recovered: true, recoveredCount: 15 });
    expectExactRun(rec, 1, 20);
  }, 20_000);

  for (const persistence of ['none', 'aof'] as const) {
    const outcome =
      persistence === 'none'
        ? 'no persistence: recovered false, new epoch'
        : 'AOF, fsync always: recovered true';
    test(`Redis SIGKILLed and restarted under traffic (${outcome}), no crash`, async () => {
      const errors = watchProcessErrors();
      const dir = persistence === 'aof' ? await mkdtemp(join(tmpdir(), 'roomcast-aof-')) : undefined;
      if (dir) cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const redis = await startRedis({ appendOnlyDir: dir });
      const a = await startInstance({ redis });
      const emitter = await emitterOn(redis);
      const live = await recorder(a.url, 'feed-redis');
      const away = await recorder(a.url, 'feed-redis');

      let outage: Promise<void> | undefined;
      let awayStoppedAt = 0;
      const traffic = stream(emitter, 'feed-redis', 300, (accepted) => {
        if (accepted === 100 && away.client.state !== 'disconnected') {
          away.client.close();
          awayStoppedAt = away.offsets.at(-1) ?? 0;
        }
        // Not awaited: publishing goes on (rejected or held by ioredis) while Redis is down.
        if (accepted === 150) {
          outage ??= redis.kill().then(async () => {
            await Bun.sleep(500);
            await redis.restart();
          });
        }
      });
      const { rejected } = await traffic;
      expect(outage).toBeDefined();
      await outage;
      // A slower tail: an instance whose subscription is not back yet hears nothing of what is
      // published meanwhile, and its clients notice the gap at the next publication they get.
      await stream(emitter, 'feed-redis', 20, undefined, 50);
      await away.client.connect();
      // Where the room really ended (a publish whose answer was lost in the crash may have been applied).
      const { offset: last, epoch: finalEpoch } = await emitter.history({
        room: 'feed-redis',
        limit: 1,
        reverse: true,
      });
      await eventually(
        () =>
          live.offsets.at(-1) === last &&
          // Without persistence the away client gets nothing more after its (failed) recovery.
          (persistence === 'none' || away.offsets.at(-1) === last) &&
          away.recoveries.length >= 1,
        CATCH_UP_BOUND_MS,
        "both clients at the room's last offset",
      );
      await Bun.sleep(200); // a late duplicate would show up now
      figure(`history-redis-${persistence}.publishes-rejected-during-outage`, rejected);
      expect(await alive(a)).toBe(true);

      const byEpoch = (rec: IRecorder) => {
        const runs = new Map<string, number[]>();
        for (const { epoch, offset } of rec.infos) runs.set(epoch, [...(runs.get(epoch) ?? []), offset]);
        return runs;
      };
      const liveRuns = byEpoch(live);
      const first = live.infos[0]!.epoch;
      // Before the crash: 1..k without a gap. k may be a little under 150: a publication Redis
      // accepted just before the SIGKILL can die with it on its way over Pub/Sub.
      const before = liveRuns.get(first)!;
      expect(before).toEqual(range(1, before.length));
      expect(before.length).toBeGreaterThan(100);
      if (persistence === 'none') {
        // Redis came back empty: a new epoch, counted from 1 again; the client was told.
        expect(finalEpoch).not.toBe(first);
        expect([...liveRuns.keys()]).toEqual([first, finalEpoch]);
        const after = liveRuns.get(finalEpoch)!;
        // The new epoch in full: what the instance missed while resubscribing was repaired.
        expect(after).toEqual(range(1, last));
        expect(live.recoveries.some((r) => !r.recovered && r.position.epoch === finalEpoch)).toBe(true);
        expect(away.recoveries.at(-1)).toMatchObject({ recovered: false });
        expect(away.recoveries.at(-1)!.position.epoch).toBe(finalEpoch);
      } else {
        // The AOF kept every publication: one epoch, 1..last for both, every recovery true.
        expect(finalEpoch).toBe(first);
        expectExactRun(live, 1, last);
        expectExactRun(away, 1, last);
        expect(live.recoveries.every((r) => r.recovered)).toBe(true);
        expect(away.recoveries.every((r) => r.recovered)).toBe(true);
        expect(away.recoveries.reduce((sum, r) => sum + r.recoveredCount, 0)).toBe(last - awayStoppedAt);
      }
      errors.stop();
      expect(errors.rejections).toEqual([]);
      expect(errors.exceptions).toEqual([]);
    }, 40_000);
  }

  test('single instance: a dropped client recovers from memory; after a restart it is told it cannot', async () => {
    const a = await startInstance();
    const rec = await recorder(a.url, 'feed-memory');
    const publish = (from: number, count: number) =>
      fetch(`${a.http}/publish?room=feed-memory&from=${from}&count=${count}`, { method: 'POST' });

    await publish(1, 50);
    await eventually(() => rec.offsets.length === 50, 3_000, 'first 50');
    const reconnecting = new Promise<void>((resolve) => {
      const stop = rec.client.onStateChange(({ state }) => {
        if (state !== 'reconnecting') return;
        stop();
        resolve();
      });
    });
    await fetch(`${a.http}/drop`, { method: 'POST' });
    await reconnecting;
    await publish(51, 50); // while the client is away
    await eventually(() => rec.recoveries.length === 1 && rec.offsets.length === 100, 5_000, 'recovered');
    expect(rec.recoveries[0]).toMatchObject({ room: 'feed-memory', recovered: true });
    expect(rec.recoveries[0]!.recoveredCount).toBeGreaterThan(0);
    expectExactRun(rec, 1, 100);
    expect(rec.seqs).toEqual(range(1, 100));

    // A restarted process has lost its memory: the client is told, under a new epoch.
    const epoch = rec.client.position('feed-memory')!.epoch;
    await kill(a);
    const again = await startInstance({ port: a.port });
    await eventually(() => rec.recoveries.length === 2, 8_000, 'the outcome after the restart');
    expect(rec.recoveries[1]).toMatchObject({ recovered: false, recoveredCount: 0 });
    expect(rec.recoveries[1]!.position.epoch).not.toBe(epoch);
    await fetch(`${again.http}/publish?room=feed-memory&from=101&count=3`, { method: 'POST' });
    await eventually(() => rec.offsets.length === 103, 3_000, 'live in the new epoch');
    expect(rec.offsets.slice(100)).toEqual([1, 2, 3]);
  }, 30_000);
});
