import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { RoomcastClient } from '../../src/client/client.ts';
import type { IPresenceEvent, IPresenceMember } from '../../src/client/index.ts';
import { presenceMembersKey } from '../../src/presence/keys.ts';
import { spawnInstance } from '../support/child-instance.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { eventually } from '../support/server.ts';

/**
 * Presence heals: three instances as child processes on one real redis-server. An instance
 * paused (SIGSTOP) past the TTL, redis-server paused for 3.5 TTLs, and Redis losing its data
 * (FLUSHALL): afterwards presence() on every instance is the connected truth again within a
 * bound, the event stream of every subscriber ends on that same truth, and a member that
 * joined after the fault is removed (with its leave) when its instance is then SIGKILLed,
 * leaving no field behind in Redis.
 */

const FIXTURE = `${import.meta.dir}/fixtures/cluster-instance.ts`;
const TTL = 1_000;
/** What "within one heartbeat" gets on a loaded machine: TTL / 3, plus generous slack. */
const CONVERGE_MS = 3_000;

interface IInstance {
  port: number;
  url: string;
  http: string;
  proc: Subprocess;
}

interface IMember {
  client: RoomcastClient;
  id: string;
  events: Array<['join' | 'leave', string]>;
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
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await proc.exited;
  }
  processes.clear();
  await redisCli('FLUSHALL');
}, 20_000);

async function redisCli(...args: string[]): Promise<string> {
  const proc = Bun.spawn(['redis-cli', '-p', String(redis.port), ...args], { stdout: 'pipe' });
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  return text;
}

/** The redis-server's pid (INFO tells it), so a test can pause it. */
async function redisPid(): Promise<number> {
  return Number(/process_id:(\d+)/.exec(await redisCli('INFO', 'server'))![1]);
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

async function presenceIds(instance: IInstance, room: string): Promise<string[] | string> {
  const res = await fetch(`${instance.http}/presence?room=${room}`);
  const body = (await res.json()) as IPresenceMember[] | { error: string };
  return Array.isArray(body) ? body.map((m) => m.clientId).sort() : body.error;
}

async function connect(instance: IInstance, user: string, room: string, subscribe = false): Promise<IMember> {
  const client = new RoomcastClient(instance.url, { auth: { token: 'ok', user }, reconnect: false });
  clients.add(client);
  const info = await client.ready;
  const member: IMember = { client, id: info.id, events: [] };
  client.on('ws:presence:join', (e: IPresenceEvent) => member.events.push(['join', e.clientId]));
  client.on('ws:presence:leave', (e: IPresenceEvent) => member.events.push(['leave', e.clientId]));
  await client.join(room);
  if (subscribe) await client.subscribePresence(room);
  return member;
}

/** Polls until presence() on each instance is `expected`; resolves with the time it took. */
async function converged(instances: IInstance[], room: string, expected: string[]): Promise<number> {
  const started = Date.now();
  const want = [...expected].sort();
  let last: unknown[] = [];
  while (Date.now() - started < CONVERGE_MS * 3) {
    last = await Promise.all(instances.map((instance) => presenceIds(instance, room)));
    if (last.every((ids) => JSON.stringify(ids) === JSON.stringify(want))) return Date.now() - started;
    await Bun.sleep(25);
  }
  throw new Error(`presence did not converge: ${JSON.stringify(last)} vs ${JSON.stringify(want)}`);
}

/** The membership a subscriber's events describe, from what it knew when they were reset. */
function replay(member: IMember, known: readonly string[]): string[] {
  const set = new Set(known);
  for (const [kind, id] of member.events) {
    if (kind === 'join') set.add(id);
    else set.delete(id);
  }
  return [...set].sort();
}

/**
 * Three instances, a subscribed watcher and two members on each, all in `room`; every watcher
 * has heard every member join (then its events are reset; the watchers are what it knows).
 */
async function cluster(room: string) {
  const instances = await Promise.all([0, 1, 2].map(() => startInstance()));
  const watchers = await Promise.all(instances.map((instance, n) => connect(instance, `w${n}`, room, true)));
  await Bun.sleep(200); // joins announced around the subscriptions: let them land, then forget them
  for (const watcher of watchers) watcher.events.length = 0;
  const members = await Promise.all([0, 1, 2, 0, 1, 2].map((n, k) => connect(instances[n]!, `m${k}`, room)));
  await eventually(
    () => watchers.every((w) => w.events.length === members.length),
    5_000,
    'every member announced to every watcher',
  );
  const known = watchers.map((w) => w.id);
  const onInstance = (n: number) => [watchers[n]!, members[n]!, members[n + 3]!];
  const everyone = () => [...watchers, ...members];
  for (const watcher of watchers) watcher.events.length = 0;
  const all = everyone().map((c) => c.id);
  return { instances, watchers, members, known: all, onInstance, watcherIds: known };
}

/**
 * A member joins on instance 2 after the fault; then instance 2 is SIGKILLed: its members
 * (the late one included) are announced gone to the watchers of 0 and 1 and leave presence
 * and Redis: no field is left behind.
 */
async function lateJoinerRemovedOnKill(
  room: string,
  instances: IInstance[],
  watchers: IMember[],
  alive: string[],
  onVictim: string[],
): Promise<void> {
  for (const watcher of watchers) watcher.events.length = 0;
  const late = await connect(instances[2]!, 'late', room);
  await eventually(() => watchers.every((w) => w.events.length === 1), 5_000, 'the late joiner announced');
  for (const watcher of watchers) expect(watcher.events).toEqual([['join', late.id]]);
  const victims = [...onVictim, late.id].sort();
  instances[2]!.proc.kill('SIGKILL');
  await instances[2]!.proc.exited;
  const survivors = watchers.slice(0, 2);
  await eventually(
    () => survivors.every((w) => w.events.length === 1 + victims.length),
    TTL * 6,
    'the killed instance’s members announced as gone',
  );
  for (const watcher of survivors) {
    expect(watcher.events.slice(1).every(([kind]) => kind === 'leave')).toBe(true);
    expect(
      watcher.events
        .slice(1)
        .map(([, id]) => id)
        .sort(),
    ).toEqual(victims);
  }
  const remaining = alive.filter((id) => !victims.includes(id)).sort();
  await converged(instances.slice(0, 2), room, remaining);
  const fields = (await redisCli('HKEYS', presenceMembersKey(room))).split('\n').filter(Boolean).sort();
  expect(fields).toEqual(remaining);
}

describe('presence heals', () => {
  test('an instance paused past the TTL: swept meanwhile, its members are back in presence() everywhere and announced again within a heartbeat of SIGCONT; a member joined after is removed when it dies', async () => {
    const room = 'p-pause';
    const { instances, watchers, known, onInstance } = await cluster(room);
    const victim = instances[2]!;
    const paused = onInstance(2)
      .map((c) => c.id)
      .sort();
    victim.proc.kill('SIGSTOP');
    // Swept by the others: their watchers hear the paused members leave.
    await eventually(
      () => watchers.slice(0, 2).every((w) => w.events.length === paused.length),
      TTL * 6,
      'the paused instance swept',
    );
    for (const watcher of watchers.slice(0, 2)) {
      expect(watcher.events.every(([kind]) => kind === 'leave')).toBe(true);
      expect(watcher.events.map(([, id]) => id).sort()).toEqual(paused);
    }
    victim.proc.kill('SIGCONT');
    const took = await converged(instances, room, known);
    expect(took).toBeLessThan(CONVERGE_MS);
    // Every watcher's events end on the truth: the paused members were announced as joins again.
    await eventually(
      () => watchers.every((w) => JSON.stringify(replay(w, known)) === JSON.stringify([...known].sort())),
      CONVERGE_MS,
      'every watcher’s event stream back on the truth',
    );
    for (const watcher of watchers.slice(0, 2)) {
      const joins = watcher.events
        .filter(([kind]) => kind === 'join')
        .map(([, id]) => id)
        .sort();
      expect(joins).toEqual(paused);
    }
    await Bun.sleep(TTL); // nothing more: no second sweep, no second announcement
    for (const watcher of watchers.slice(0, 2)) expect(watcher.events).toHaveLength(paused.length * 2);
    expect(await converged(instances, room, known)).toBeLessThan(CONVERGE_MS);
    await lateJoinerRemovedOnKill(room, instances, watchers, known, paused);
  }, 60_000);

  test('redis-server paused for 3.5 TTLs: nobody is swept, no event is sent, presence() is the truth again within a heartbeat; a member joined after is removed when its instance dies', async () => {
    const room = 'p-stall';
    const { instances, watchers, known, onInstance } = await cluster(room);
    const pid = await redisPid();
    process.kill(pid, 'SIGSTOP');
    try {
      await Bun.sleep(TTL * 3.5);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const took = await converged(instances, room, known);
    expect(took).toBeLessThan(CONVERGE_MS);
    await Bun.sleep(TTL * 2); // past a full TTL of steady heartbeats, when sweeping resumes
    expect(await converged(instances, room, known)).toBeLessThan(CONVERGE_MS);
    for (const watcher of watchers) expect(watcher.events).toEqual([]);
    for (const member of [...watchers]) expect(member.client.state).toBe('connected');
    await lateJoinerRemovedOnKill(
      room,
      instances,
      watchers,
      known,
      onInstance(2).map((c) => c.id),
    );
  }, 60_000);

  test('Redis loses its data (FLUSHALL): every member is written again and announced as a join within a heartbeat; a member joined after is removed when its instance dies', async () => {
    const room = 'p-lost';
    const { instances, watchers, known, onInstance } = await cluster(room);
    await redisCli('FLUSHALL');
    const took = await converged(instances, room, known);
    expect(took).toBeLessThan(CONVERGE_MS);
    // Each instance announces its own members once (the entries it wrote again were missing).
    await eventually(
      () => watchers.every((w) => w.events.length === known.length),
      CONVERGE_MS,
      'every member announced again',
    );
    for (const watcher of watchers) {
      expect(watcher.events.every(([kind]) => kind === 'join')).toBe(true);
      expect(watcher.events.map(([, id]) => id).sort()).toEqual([...known].sort());
    }
    await Bun.sleep(TTL);
    for (const watcher of watchers) expect(watcher.events).toHaveLength(known.length);
    await lateJoinerRemovedOnKill(
      room,
      instances,
      watchers,
      known,
      onInstance(2).map((c) => c.id),
    );
  }, 60_000);
});
