import { afterAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import Redis from 'ioredis';
import { RoomcastClient } from '../../src/client/client.ts';
import type { IPublicationInfo } from '../../src/client/index.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { WebSocketEmitter } from '../../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { figure, watchProcessErrors } from '../support/figures.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import {
  checkHistory,
  describeViolations,
  type IChaosHistory,
  type IDeliveryEvent,
  type IPublishRecord,
  type TClientEvent,
} from './fixtures/chaos-checker.ts';
import { historyPolicy } from './fixtures/history-instance.ts';

/**
 * Chaos (issue 18, point 7): three instances as child processes on one real redis-server, SDK
 * clients given the URLs of all three, publishers on the emitter and on the instances, and a
 * seeded nemesis that SIGKILLs (and replaces) instances, SIGSTOPs them, SIGSTOPs redis-server,
 * SIGKILLs and restarts it (AOF: its data kept) or wipes it (AOF deleted before the restart: its
 * data lost), and closes clients for a while. Then everything is healed, a last
 * batch published, and `checkHistory` (fixtures/chaos-checker.ts) holds every client and room to
 * the promise of docs/recovery.md: in order within an epoch, no duplicate, every gap reported by
 * `recovered: false` at the point where it happened, nothing missing at the end.
 *
 * The seed is printed; `CHAOS_SEED=<n>` replays its fault schedule (the interleaving with the
 * traffic still varies from run to run). `CHAOS_RECORD=<file>` saves the recorded history as JSON
 * (it is saved to the temporary directory anyway when the checker finds a violation); run
 * `bun test/reliability/fixtures/chaos-checker.ts <file>` to check a saved one again.
 */

const FIXTURE = `${import.meta.dir}/fixtures/chaos-instance.ts`;
const ROOMS = ['feed-chaos-a', 'feed-chaos-b', 'feed-chaos-c'];
const INSTANCES = 3;
/**
 * This instance (and each of its replacements) runs `subscriptionMode: 'rooms'` (subscribes a room's
 * channel only while it has members there), the others the default `'pattern'`: both paths of
 * recovery.md "Joining with recovery" are under fire in every run.
 */
const ROOMS_MODE_INSTANCE = 2;
/** Emitter: one publish per room every 50 ms, awaited (so about 20 a second per room while Redis answers). */
const EMITTER_EVERY_MS = 50;
/** Instances: every 150 ms each instance that is not dead is asked to publish once to every room. */
const INSTANCE_EVERY_MS = 150;
const CAUGHT_UP_BOUND_MS = 20_000;
/** Length of the main run's fault phase (faults start 0.5 to 1.5 s into it). */
const CHAOS_MS = durationFromEnv() ?? 32_000;

/** `CHAOS_DURATION_MS` lengthens (or shortens, not below 30 s) the main run for a local hunt. */
function durationFromEnv(): number | undefined {
  const text = process.env.CHAOS_DURATION_MS;
  if (text === undefined || text === '') return undefined;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 30_000 || ms > 600_000) {
    throw new Error(`CHAOS_DURATION_MS must be an integer from 30000 to 600000, got ${text}`);
  }
  return ms;
}
/** The planted-fault run is shorter: it tests the checker, the main run tests the system. */
const PLANTED_CHAOS_MS = 8_000;

const processes = new Set<Subprocess>();
const redisServers = new Set<RedisServer>();
const cleanups: Array<() => Promise<void> | void> = [];

/** Set by the teardown: a fault still running (a replacement about to start) must not outlive the file. */
let tearingDown = false;

afterAll(async () => {
  tearingDown = true;
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort: the processes below are killed whatever happened
    }
  }
  for (const proc of processes) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  processes.clear();
  for (const redis of redisServers) await redis.stop();
  redisServers.clear();
});

/** mulberry32: a small seeded PRNG, the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type TFaultKind =
  | 'instance-kill'
  | 'instance-stop'
  | 'redis-stop'
  | 'redis-restart'
  | 'redis-wipe'
  | 'client-away';

interface IFault {
  /** Milliseconds after the chaos phase began. */
  at: number;
  kind: TFaultKind;
  /** The instance (index) for instance faults, the client (index) for `client-away`, -1 for Redis. */
  target: number;
  /** How long the fault lasts: stopped time, time dead before the restart, or time away. */
  duration: number;
}

/**
 * The whole fault schedule, derived from the seed alone (so it replays). Each fault lasts
 * `duration`; a target is considered busy until `duration` plus a margin for its restart, and at
 * least one instance is always left running.
 */
function faultSchedule(seed: number, chaosMs: number, clients: number): IFault[] {
  const random = prng(seed);
  const between = (min: number, max: number) => Math.round(min + random() * (max - min));
  const busyUntil = Array.from({ length: INSTANCES }, () => 0);
  const clientBusyUntil = Array.from({ length: clients }, () => 0);
  let redisBusyUntil = 0;
  const faults: IFault[] = [];
  for (let at = between(500, 1_500); at < chaosMs; at += between(600, 1_600)) {
    const roll = random();
    const kind: TFaultKind =
      roll < 0.25
        ? 'instance-kill'
        : roll < 0.5
          ? 'instance-stop'
          : roll < 0.67
            ? 'redis-stop'
            : roll < 0.76
              ? 'redis-restart'
              : roll < 0.85
                ? 'redis-wipe'
                : 'client-away';
    const duration =
      kind === 'instance-kill'
        ? between(200, 1_500)
        : kind === 'instance-stop'
          ? between(400, 3_000)
          : kind === 'redis-stop'
            ? // One in four stalls outlasts the 5 s a recovering join waits for its history read.
              random() < 0.25
              ? between(5_500, 7_000)
              : between(300, 2_500)
            : kind === 'redis-restart' || kind === 'redis-wipe'
              ? between(100, 1_000)
              : between(500, 4_000);
    if (kind === 'client-away') {
      const target = Math.floor(random() * clients);
      if (at < clientBusyUntil[target]!) continue;
      clientBusyUntil[target] = at + duration + 1_000;
      faults.push({ at, kind, target, duration });
      continue;
    }
    if (kind.startsWith('redis')) {
      if (at < redisBusyUntil) continue;
      redisBusyUntil = at + duration + 1_500;
      faults.push({ at, kind, target: -1, duration });
      continue;
    }
    const free = busyUntil.flatMap((until, index) => (until <= at ? [index] : []));
    if (free.length < 2) continue; // keep one instance up
    const target = free[Math.floor(random() * free.length)]!;
    busyUntil[target] = at + duration + 2_000;
    faults.push({ at, kind, target, duration });
  }
  return faults;
}

interface IInstanceSlot {
  index: number;
  port: number;
  url: string;
  proc?: Subprocess;
  state: 'up' | 'stopped' | 'down';
  /** Incremented at every (re)start, so instance publish ids stay unique. */
  generation: number;
}

async function spawnInto(slot: IInstanceSlot, redisPort: number): Promise<void> {
  if (tearingDown) return;
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const proc = Bun.spawn([process.execPath, 'run', FIXTURE], {
    env: {
      ...process.env,
      PORT: String(slot.port),
      REDIS_PORT: String(redisPort),
      SUBSCRIPTION_MODE: slot.index === ROOMS_MODE_INSTANCE ? 'rooms' : 'pattern',
    },
    stdout: 'ignore',
    stderr: 'inherit',
    serialization: 'json',
    ipc(message) {
      if ((message as { ready?: boolean })?.ready) ready();
    },
  });
  processes.add(proc);
  const started = await Promise.race([
    isReady.then(() => true),
    proc.exited.then(() => false),
    Bun.sleep(10_000).then(() => false),
  ]);
  if (tearingDown || !started) {
    proc.kill('SIGKILL');
    await proc.exited;
    processes.delete(proc);
  }
  if (tearingDown) return;
  if (!started) throw new Error(`instance ${slot.index} did not start on port ${slot.port}`);
  slot.proc = proc;
  slot.generation++;
  slot.state = 'up';
}

async function killSlot(slot: IInstanceSlot): Promise<void> {
  const proc = slot.proc;
  slot.state = 'down';
  slot.proc = undefined;
  if (!proc) return;
  proc.kill('SIGKILL');
  await proc.exited;
  processes.delete(proc);
}

/** redis-server's pid, asked from itself (the test support helper does not expose it). */
async function redisPid(port: number): Promise<number> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error('no process_id in INFO server');
    return pid;
  } finally {
    redis.disconnect();
  }
}

interface IRunOptions {
  seed: number;
  chaosMs: number;
  clients: number;
  /** Planted faults: called for every delivery instead of recording it directly. */
  tamper?: (client: number, event: TClientEvent, record: (event: TClientEvent) => void) => void;
}

interface IRunResult {
  history: IChaosHistory;
  faults: IFault[];
  applied: Record<TFaultKind, number>;
  skipped: number;
  restartsFailed: number;
  publishes: { ok: number; failed: number; unknown: number };
  healToCaughtUpMs: number;
  caughtUp: boolean;
  clientErrors: number;
  processErrors: { rejections: unknown[]; exceptions: unknown[] };
}

async function runChaos(opts: IRunOptions): Promise<IRunResult> {
  const { seed, chaosMs } = opts;
  const processErrors = watchProcessErrors();
  // AOF with an fsync per write: a plain restart keeps every room's history (same epochs), a wipe
  // deletes the AOF files before the restart (every room starts a new epoch).
  const dataDir = await mkdtemp(join(tmpdir(), 'roomcast-chaos-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const redis = await RedisServer.start(undefined, [
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--dir',
    dataDir,
  ]);
  redisServers.add(redis);
  let pid = await redisPid(redis.port);

  const slots: IInstanceSlot[] = [];
  for (let index = 0; index < INSTANCES; index++) {
    const port = await freePort();
    slots.push({ index, port, url: `ws://127.0.0.1:${port}/ws`, state: 'down', generation: 0 });
  }
  await Promise.all(slots.map((slot) => spawnInto(slot, redis.port)));

  const emitterConnection = new RedisHelper({
    name: 'chaos-emitter',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({
    redisConnection: emitterConnection,
    logger: silentLogger,
    historyFn: historyPolicy,
  });
  await emitter.configure();
  cleanups.push(async () => {
    await emitter.shutdown();
    await emitterConnection.disconnect();
  });

  // Clients: every one knows all three URLs, each starting on a different instance.
  const events: Record<string, TClientEvent[]> = {};
  const clients: RoomcastClient[] = [];
  let clientErrors = 0;
  for (let c = 0; c < opts.clients; c++) {
    const name = `client-${c}`;
    const list: TClientEvent[] = [];
    events[name] = list;
    const record = (event: TClientEvent) => list.push(event);
    const urls = slots.map((_, i) => slots[(c + i) % INSTANCES]!.url);
    const client = new RoomcastClient(urls, {
      auth: { token: 'ok' },
      reconnect: { initialDelay: 50, maxDelay: 500 },
      connectTimeout: 2_000,
      onError: () => {
        clientErrors++;
      },
      onRecovery: ({ room, recovered, position }) =>
        record({
          kind: 'recovery',
          room,
          recovered,
          ...(position ? { position: { offset: position.offset, epoch: position.epoch } } : {}),
        }),
    });
    cleanups.push(() => client.close());
    clients.push(client);
    client.on('msg', (data: unknown, publication?: IPublicationInfo) => {
      if (!publication) return;
      const event: TClientEvent = {
        kind: 'deliver',
        room: publication.room,
        epoch: publication.epoch,
        offset: publication.offset,
        id: String((data as { id?: unknown })?.id),
      };
      if (opts.tamper) opts.tamper(c, event, record);
      else record(event);
    });
  }
  await Promise.all(clients.map((client) => client.ready));
  await Promise.all(clients.map((client) => client.join(ROOMS)));

  // Publishers.
  const publishes: IPublishRecord[] = [];
  let publishing = true;
  const emitterLoops = ROOMS.map(async (room) => {
    for (let n = 1; publishing; n++) {
      const record: IPublishRecord = { id: `e:${room}:${n}`, room, outcome: 'unknown' };
      publishes.push(record);
      try {
        const position = await emitter.toRoom({ room, event: 'msg', data: { id: record.id } });
        if (position) {
          record.outcome = 'ok';
          record.position = { offset: position.offset, epoch: position.epoch };
        }
      } catch {
        record.outcome = 'failed';
      }
      await Bun.sleep(EMITTER_EVERY_MS);
    }
  });
  const counters = new Map<string, number>();
  const instanceTimer = setInterval(() => {
    for (const slot of slots) {
      if (slot.state === 'down' || !slot.proc) continue;
      for (const room of ROOMS) {
        const key = `i${slot.index}.${slot.generation}:${room}`;
        const n = (counters.get(key) ?? 0) + 1;
        counters.set(key, n);
        const id = `${key}:${n}`;
        try {
          slot.proc.send({ publish: { room, id } });
          publishes.push({ id, room, outcome: 'unknown' });
        } catch {
          // the process just died: nothing was sent
        }
      }
    }
  }, INSTANCE_EVERY_MS);

  // Warm-up without faults, then the nemesis.
  await Bun.sleep(1_500);
  const faults = faultSchedule(seed, chaosMs, opts.clients);
  const applied: Record<TFaultKind, number> = {
    'instance-kill': 0,
    'instance-stop': 0,
    'redis-stop': 0,
    'redis-restart': 0,
    'redis-wipe': 0,
    'client-away': 0,
  };
  let skipped = 0;
  let restartsFailed = 0;
  let redisState: 'up' | 'busy' = 'up';
  const running: Promise<void>[] = [];
  const chaosStart = Date.now();
  for (const fault of faults) {
    const wait = chaosStart + fault.at - Date.now();
    if (wait > 0) await Bun.sleep(wait);
    if (fault.kind === 'client-away') {
      // The application closes the client and connects it again later (same object, same positions).
      const client = clients[fault.target]!;
      applied[fault.kind]++;
      console.log(
        `[chaos] +${Date.now() - chaosStart}ms client-away client-${fault.target} for ${fault.duration}ms`,
      );
      client.close();
      running.push(
        (async () => {
          await Bun.sleep(fault.duration);
          // A client that does not come back fails the tail check; no need to fail here too.
          await client.connect().catch((error) => console.log(`[chaos] client-${fault.target}: ${error}`));
        })(),
      );
      continue;
    }
    const slot = fault.target >= 0 ? slots[fault.target]! : undefined;
    const othersUp = slots.filter((s) => s !== slot && s.state === 'up').length;
    if (slot ? slot.state !== 'up' || othersUp === 0 : redisState !== 'up') {
      skipped++; // the previous fault on that target is not over yet (a slow restart)
      continue;
    }
    applied[fault.kind]++;
    console.log(
      `[chaos] +${Date.now() - chaosStart}ms ${fault.kind} ${slot ? `instance ${slot.index}` : 'redis'} for ${fault.duration}ms`,
    );
    if (slot && fault.kind === 'instance-kill') {
      running.push(
        (async () => {
          await killSlot(slot);
          await Bun.sleep(fault.duration);
          // The port may have been taken meanwhile by another process of the machine: the slot
          // then stays dead (the clients have two other URLs) and the run goes on.
          await spawnInto(slot, redis.port).catch((error) => {
            restartsFailed++;
            console.log(`[chaos] ${error}`);
          });
        })(),
      );
    } else if (slot) {
      const proc = slot.proc!;
      slot.state = 'stopped';
      proc.kill('SIGSTOP');
      running.push(
        (async () => {
          await Bun.sleep(fault.duration);
          proc.kill('SIGCONT');
          if (slot.proc === proc) slot.state = 'up';
        })(),
      );
    } else if (fault.kind === 'redis-stop') {
      redisState = 'busy';
      process.kill(pid, 'SIGSTOP');
      running.push(
        (async () => {
          await Bun.sleep(fault.duration);
          process.kill(pid, 'SIGCONT');
          redisState = 'up';
        })(),
      );
    } else {
      redisState = 'busy';
      running.push(
        (async () => {
          await redis.kill();
          if (fault.kind === 'redis-wipe') {
            await rm(dataDir, { recursive: true, force: true });
            await mkdir(dataDir);
          }
          await Bun.sleep(fault.duration);
          if (tearingDown) return;
          await redis.restart();
          pid = await redisPid(redis.port);
          redisState = 'up';
        })(),
      );
    }
  }
  const remaining = chaosStart + chaosMs - Date.now();
  if (remaining > 0) await Bun.sleep(remaining);

  // Heal: every fault ends (stopped processes continue, dead ones are replaced), publishing stops.
  await Promise.all(running);
  publishing = false;
  clearInterval(instanceTimer);
  await Promise.all(emitterLoops);
  await Bun.sleep(1_000); // instance publishes still in the pipes get their positions

  // A last batch, published once everything is up, so every client must end on the same position.
  // The emitter's connection may still be coming back from the last Redis restart: retry (bounded).
  const retrying = async <T>(what: string, attempt: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what} still failing after the heal: ${String(error)}`);
        await Bun.sleep(100);
      }
    }
  };
  const finalPositions: IChaosHistory['finalPositions'] = {};
  for (const room of ROOMS) {
    for (let n = 1; n <= 5; n++) {
      let attempt = 0;
      await retrying('the last batch', async () => {
        const record: IPublishRecord = { id: `final:${room}:${n}.${++attempt}`, room, outcome: 'failed' };
        publishes.push(record);
        const position = await emitter.toRoom({ room, event: 'msg', data: { id: record.id } });
        record.outcome = 'ok';
        if (position) record.position = { offset: position.offset, epoch: position.epoch };
      });
    }
    const { offset, epoch } = await retrying('the final position', () => emitter.history({ room, limit: 0 }));
    finalPositions[room] = { offset, epoch };
  }
  const healed = Date.now();
  const lastDelivered = (list: TClientEvent[], room: string) =>
    list.findLast((event) => event.kind === 'deliver' && event.room === room);
  const allCaughtUp = () =>
    Object.values(events).every((list) =>
      ROOMS.every((room) => {
        const last = lastDelivered(list, room);
        return (
          last?.kind === 'deliver' &&
          last.epoch === finalPositions[room]!.epoch &&
          last.offset === finalPositions[room]!.offset
        );
      }),
    );
  while (!allCaughtUp() && Date.now() - healed < CAUGHT_UP_BOUND_MS) await Bun.sleep(20);
  const caughtUp = allCaughtUp();
  const healToCaughtUpMs = Date.now() - healed;
  await Bun.sleep(500); // anything late (a duplicate) shows up now
  for (const client of clients) client.close();
  processErrors.stop();

  const ok = publishes.filter((p) => p.outcome === 'ok').length;
  const failed = publishes.filter((p) => p.outcome === 'failed').length;
  return {
    history: { seed, clients: events, publishes, finalPositions },
    faults,
    applied,
    skipped,
    restartsFailed,
    publishes: { ok, failed, unknown: publishes.length - ok - failed },
    healToCaughtUpMs,
    caughtUp,
    clientErrors,
    processErrors,
  };
}

function newSeed(): number {
  const fromEnv = process.env.CHAOS_SEED;
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new Error(`CHAOS_SEED must be a uint32, got ${fromEnv}`);
    return seed;
  }
  return Math.floor(Math.random() * 0x1_0000_0000);
}

function save(history: IChaosHistory, why: string): string {
  const file =
    process.env.CHAOS_RECORD || join(tmpdir(), `roomcast-chaos-${history.seed}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(history));
  console.log(`[chaos] history (${why}) saved to ${file}`);
  return file;
}

describe('chaos: three instances, one Redis, a seeded nemesis', () => {
  test(
    'every client and room: in order, no duplicate, every gap reported, nothing missing at the end',
    async () => {
      const seed = newSeed();
      console.log(`[chaos] seed ${seed} (replay with CHAOS_SEED=${seed})`);
      const started = Date.now();
      const run = await runChaos({ seed, chaosMs: CHAOS_MS, clients: 9 });
      const result = checkHistory(run.history);
      const runtime = Date.now() - started;

      const perRoom = Object.values(result.stats).flatMap((rooms) => Object.values(rooms));
      const sum = (pick: (s: (typeof perRoom)[number]) => number) =>
        perRoom.reduce((total, s) => total + pick(s), 0);
      figure('chaos.seed', seed);
      figure('chaos.run-ms', runtime);
      for (const [kind, count] of Object.entries(run.applied)) figure(`chaos.faults.${kind}`, count);
      figure('chaos.faults.skipped', run.skipped);
      figure('chaos.instance-restarts-failed', run.restartsFailed);
      figure('chaos.client-errors', run.clientErrors);
      figure('chaos.publishes.emitter-accepted', run.publishes.ok);
      figure('chaos.publishes.emitter-rejected', run.publishes.failed);
      figure('chaos.publishes.instance-sent', run.publishes.unknown);
      figure(
        'chaos.delivered',
        sum((s) => s.delivered),
      );
      figure(
        'chaos.recovered-true',
        sum((s) => s.recoveredTrue),
      );
      figure(
        'chaos.recovered-false',
        sum((s) => s.recoveredFalse),
      );
      figure(
        'chaos.reported-jumps',
        sum((s) => s.reportedJumps),
      );
      figure('chaos.accepted-missed-and-reported', result.missedAccepted);
      figure('chaos.delivered-though-rejected', result.deliveredThoughFailed);
      figure('chaos.heal-to-all-caught-up-ms', run.healToCaughtUpMs);
      figure('chaos.violations', result.violations.length);

      if (result.violations.length > 0 || process.env.CHAOS_RECORD) {
        save(run.history, `${result.violations.length} violations`);
      }
      expect(describeViolations(result.violations)).toBe('');
      expect(run.caughtUp).toBe(true);
      expect(run.processErrors.rejections).toEqual([]);
      expect(run.processErrors.exceptions).toEqual([]);
      // The nemesis really did something of every kind it has (the schedule is long enough for it).
      expect(Object.values(run.applied).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10);
    },
    CHAOS_MS + 45_000,
  );

  test('a planted drop and a planted duplicate are caught, and so is every doctored history', async () => {
    // The first seed whose short schedule kills an instance and wipes Redis: the clients then
    // recover and get recovered:false reports, which the doctored histories below need.
    let seed = 1;
    const kinds = (s: number) => new Set(faultSchedule(s, PLANTED_CHAOS_MS, 3).map((f) => f.kind));
    while (!(kinds(seed).has('redis-wipe') && kinds(seed).has('instance-kill'))) seed++;
    const DROP = { client: 0, room: ROOMS[0]!, nth: 20 };
    const DUPLICATE = { client: 1, room: ROOMS[1]!, nth: 25 };
    const seen = new Map<string, number>();
    const run = await runChaos({
      seed,
      chaosMs: PLANTED_CHAOS_MS,
      clients: 3,
      tamper: (client, event, record) => {
        const key = `${client}|${event.room}`;
        const nth = (seen.get(key) ?? 0) + 1;
        seen.set(key, nth);
        if (client === DROP.client && event.room === DROP.room && nth === DROP.nth) return; // silently lost
        record(event);
        if (client === DUPLICATE.client && event.room === DUPLICATE.room && nth === DUPLICATE.nth)
          record(event);
      },
    });
    expect(run.applied['redis-wipe']).toBeGreaterThanOrEqual(1);
    expect(run.applied['instance-kill']).toBeGreaterThanOrEqual(1);
    const { violations } = checkHistory(run.history);
    const of = (client: number) => violations.filter((v) => v.client === `client-${client}`);
    const deliveries = (client: number, room: string) =>
      run.history.clients[`client-${client}`]!.flatMap((event, index) =>
        event.kind === 'deliver' && event.room === room ? [index] : [],
      );

    // The drop: one gap, at the delivery that followed the lost one, nothing else.
    const afterDrop = deliveries(DROP.client, DROP.room)[DROP.nth - 1]!;
    expect(of(DROP.client).map((v) => [v.kind, v.room, v.at])).toEqual([['gap', DROP.room, afterDrop]]);
    // The duplicate: reported as a duplicate (same id, same position) and as out of order, at the copy.
    const copy = deliveries(DUPLICATE.client, DUPLICATE.room)[DUPLICATE.nth]!;
    expect(of(DUPLICATE.client).map((v) => [v.kind, v.room, v.at])).toEqual([
      ['duplicate', DUPLICATE.room, copy],
      ['duplicate', DUPLICATE.room, copy],
      ['order', DUPLICATE.room, copy],
    ]);
    // The client nobody tampered with is clean.
    if (of(2).length > 0) save(run.history, 'violations on the untampered client');
    expect(describeViolations(of(2))).toBe('');

    // Doctored copies of that clean client's history, each must be caught.
    const clean = run.history.clients['client-2']!;
    const doctor = (edit: (events: TClientEvent[]) => void) => {
      const events = structuredClone(clean);
      edit(events);
      return checkHistory({ ...run.history, clients: { 'client-2': events } }).violations.map((v) => v.kind);
    };
    const room = ROOMS[2]!;
    const indices = clean.flatMap((event, index) =>
      event.kind === 'deliver' && event.room === room ? [index] : [],
    );
    const middle = indices[Math.floor(indices.length / 2)]!;
    expect(doctor(() => {})).toEqual([]);
    expect(doctor((events) => events.splice(middle, 1))).toContain('gap');
    expect(doctor((events) => events.splice(middle, 0, events[middle]!))).toContain('duplicate');
    const swap = (events: TClientEvent[]) => {
      const next = indices[indices.indexOf(middle) + 1]!;
      [events[middle], events[next]] = [events[next]!, events[middle]!];
    };
    expect(doctor(swap)).toContain('order');
    expect(doctor((events) => events.splice(indices.at(-1)!, 1))).toContain('tail');
    expect(
      doctor((events) => {
        // A delivery at a position the emitter was told it got: its id is known for that position.
        const accepted = new Set(run.history.publishes.flatMap((p) => (p.outcome === 'ok' ? [p.id] : [])));
        const index = indices.find((i) => i >= middle && accepted.has((events[i] as IDeliveryEvent).id))!;
        const target = events[index] as IDeliveryEvent;
        events[index] = { ...target, id: `${target.id}-forged` };
      }),
    ).toContain('integrity');
    // Redis lost its data once: every room of this client changed epoch behind a recovered:false.
    const reports = clean.flatMap((event, index) =>
      event.kind === 'recovery' && !event.recovered ? [index] : [],
    );
    expect(checkHistory(run.history).stats['client-2']![room]!.reportedJumps).toBeGreaterThanOrEqual(1);
    // Without those reports the epoch changes are silent gaps ...
    expect(
      doctor((events) => {
        for (const index of [...reports].reverse()) events.splice(index, 1);
      }),
    ).toContain('gap');
    // ... and a report placed after the jump it should announce is at the wrong point.
    expect(
      doctor((events) => {
        for (const index of [...reports].sort((a, b) => b - a)) {
          const report = events[index]!;
          const jump = events.findIndex(
            (e, i) => i > index && e.room === report.room && e.kind === 'deliver',
          );
          events.splice(jump + 1, 0, report);
          events.splice(index, 1);
        }
      }),
    ).toContain('gap');
    figure('chaos-planted.seed', seed);
    figure('chaos-planted.violations-found', violations.length);
  }, 45_000);
});
