import { WebSocketLimits } from '../common/constants.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { jsonDepthExceeds, parseJsonObject } from '../utils/json.ts';
import {
  PRESENCE_INSTANCES_KEY,
  presenceInstanceRoomsKey,
  presenceMembersKey,
  presenceWatchersKey,
} from './keys.ts';
import type { IPresenceEvent, IPresenceMember, IPresenceStore } from './types.ts';

type TClusterWrite = [name: 'hset' | 'hdel' | 'sadd' | 'srem', ...args: string[]];

/** One queued join or leave (single node). */
interface IChange {
  membersKey: string;
  watchersKey: string;
  /** The script's arguments for it, in WRITE_SCRIPT's order. */
  args: [
    kind: 'add' | 'remove',
    clientId: string,
    value: string,
    room: string,
    roomSet: '1' | '',
    channel: string,
    message: string,
  ];
  resolve(changed: boolean): void;
  reject(error: unknown): void;
}

const SCRIPT_COMMAND = 'roomcastPresenceWrite';
const ARGS_PER_CHANGE = 7;
/** Changes per script call: a crowd of joins is split so no single call holds Redis for long. */
const MAX_CHANGES_PER_CALL = 256;
/**
 * The joins and leaves of one turn in one call. For each: the member's field (HSET / HDEL),
 * this instance's room set when asked (SADD / SREM), and the PUBLISH of its event only when
 * the field changed, so each event still goes out exactly once, by the instance whose write
 * changed something, and only while some instance watches the room's events (its watchers
 * hash exists). KEYS: the members hash and the watchers hash of each change, then the
 * instance's room set.
 * ARGV, per change: 'add' | 'remove', client id, value, room, '1' to touch the room set,
 * channel, message ('' for no event). Returns 1 / 0 per change.
 */
const WRITE_SCRIPT = `
local n = (#KEYS - 1) / 2
local roomSet = KEYS[#KEYS]
local changed = {}
for i = 1, n do
  local at = (i - 1) * ${ARGS_PER_CHANGE}
  local members = KEYS[i * 2 - 1]
  local done
  if ARGV[at + 1] == 'add' then
    done = redis.call('HSET', members, ARGV[at + 2], ARGV[at + 3])
    if ARGV[at + 5] == '1' then redis.call('SADD', roomSet, ARGV[at + 4]) end
  else
    done = redis.call('HDEL', members, ARGV[at + 2])
    if ARGV[at + 5] == '1' then redis.call('SREM', roomSet, ARGV[at + 4]) end
  end
  if done == 1 and ARGV[at + 6] ~= '' and redis.call('EXISTS', KEYS[i * 2]) == 1 then
    redis.call('PUBLISH', ARGV[at + 6], ARGV[at + 7])
  end
  changed[i] = done
end
return changed
`;
/**
 * Renews a registration that is still live: KEYS the instances' sorted set; ARGV the
 * registration id, the caller's now, the new score. Answers 1 and writes nothing when the
 * registration is gone (swept, or Redis lost it) or expired: a registration whose time has
 * passed is never renewed, so a sweeper that saw it expired can never remove a live one.
 */
const RENEW_COMMAND = 'roomcastPresenceRenew';
const RENEW_SCRIPT = `
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old and tonumber(old) > tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 0
end
return 1
`;
/**
 * The sweep's compare-and-delete on one room's members hash: ARGV pairs of client id and the
 * value read before; a field is deleted only if it still holds that value (a member its
 * instance wrote again, under a new registration, stays). Answers the client ids deleted.
 */
const SWEEP_COMMAND = 'roomcastPresenceSweep';
const SWEEP_SCRIPT = `
local removed = {}
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed[#removed + 1] = ARGV[i]
  end
end
return removed
`;
const SCRIPTS: Record<string, string> = {
  [SCRIPT_COMMAND]: WRITE_SCRIPT,
  [RENEW_COMMAND]: RENEW_SCRIPT,
  [SWEEP_COMMAND]: SWEEP_SCRIPT,
};
/** Clients the scripts are defined on (ioredis then runs them by EVALSHA, falling back to EVAL). */
const scripted = new WeakSet<object>();
type TScripted = {
  [SCRIPT_COMMAND]: (numKeys: number, ...args: string[]) => Promise<number[]>;
  [RENEW_COMMAND]: (numKeys: number, ...args: string[]) => Promise<number>;
  [SWEEP_COMMAND]: (numKeys: number, ...args: string[]) => Promise<string[]>;
};

function scripts(redis: TRedisClient): TScripted {
  if (!scripted.has(redis)) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    scripted.add(redis);
  }
  return redis as unknown as TScripted;
}

export interface IRedisPresenceOptions {
  /** The connection to run commands on (the bus's publisher); undefined while there is none. */
  client: () => TRedisClient | undefined;
  serverId: string;
  /** How long an instance's members stay valid after its last heartbeat (ms). */
  ttl: number;
  /**
   * Redis Cluster only (where the members hash and the instance's room set live in different
   * slots, so one script cannot write both): publishes an event after its write changed something.
   */
  publish?: (event: IPresenceEvent) => void;
}

/**
 * Presence in Redis with per-instance liveness. Each member is a field of its room's hash,
 * tagged with the registration of the instance that holds the connection; each instance writes
 * the time its registration runs out (now + ttl) into one sorted set every ttl / 3. `list`
 * ignores members of registrations past that time, and `sweep` deletes them (compare-and-delete):
 * exactly one caller removes a field, and it announces the leave.
 *
 * A registration is the instance id at first; an instance that finds its registration gone or
 * expired (it was paused, Redis stalled or lost its data, or a write failed) takes a new one,
 * `<instance id>#<n>`, and writes every local member again under it (`reregister`): members
 * the others swept meanwhile come back (and are announced), and the old registration, marked
 * expired, is swept of whatever it still holds.
 */
export class RedisPresenceStore implements IPresenceStore {
  /** Members of this instance per room, so the room set is trimmed when the last one leaves. */
  private readonly localCounts = new Map<string, number>();
  private queued: IChange[] = [];
  /** The id this instance's members and liveness are written under. */
  private registration: string;
  private generation = 0;
  /** A write failed since the last registration: Redis may lack a join or keep a leave. */
  private dirty = false;
  /** When the last renewal (or the first beat) was answered. */
  private lastRenewed?: number;
  /** Since when renewals have been answered on time: no sweep before a ttl of that (see `sweep`). */
  private steadySince = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: IRedisPresenceOptions) {
    this.registration = opts.serverId;
  }

  private redis(): TRedisClient {
    const client = this.opts.client();
    if (client?.status !== 'ready')
      throw new Error(`Redis is not connected (status: ${client?.status ?? 'none'})`);
    return client;
  }

  async start(): Promise<void> {
    await this.beat();
  }

  /** Writes this instance's liveness (at start: a new registration). */
  async beat(): Promise<void> {
    await this.redis().zadd(PRESENCE_INSTANCES_KEY, Date.now() + this.opts.ttl, this.registration);
    this.lastRenewed = Date.now();
  }

  /**
   * Renews the registration if it is still live. True: it is gone or expired, or a write failed
   * since it was made; the caller then calls `reregister` with every local member. Also keeps
   * track of whether renewals are answered on time (see `sweep`).
   */
  async renew(): Promise<boolean> {
    const redis = this.redis();
    const { ttl } = this.opts;
    const sentAt = Date.now();
    const lost = await scripts(redis)[RENEW_COMMAND](
      1,
      PRESENCE_INSTANCES_KEY,
      this.registration,
      String(sentAt),
      String(sentAt + ttl),
    );
    const doneAt = Date.now();
    // Late (Redis stalled), or none for a while (this process paused, or Redis away): the other
    // instances' scores may have run out for the same reason, so no sweep until a ttl of steady ones.
    if (doneAt - sentAt > ttl / 3 || doneAt - (this.lastRenewed ?? doneAt) > ttl) {
      this.steadySince = doneAt;
    }
    this.lastRenewed = doneAt;
    return lost === 1 || this.dirty;
  }

  /**
   * Takes a new registration and writes every local member under it, with the room set and the
   * watches (`watched`); the old registration is marked expired so its leftovers are swept.
   * `added(n)` is called for each member whose field did not exist (it is announced as a join),
   * as its write is answered, so it is ordered with the joins and leaves around it.
   */
  async reregister(
    members: ReadonlyArray<{ room: string; member: IPresenceMember }>,
    watched: readonly string[],
    added: (index: number) => void,
  ): Promise<void> {
    const redis = this.redis();
    const old = this.registration;
    this.registration = `${this.opts.serverId}#${++this.generation}`;
    this.dirty = false;
    // Sent before the member writes (those wait for the turn's flush), on the same connection.
    const writes: Promise<unknown>[] = [
      redis.zadd(PRESENCE_INSTANCES_KEY, Date.now() + this.opts.ttl, this.registration),
      redis.zadd(PRESENCE_INSTANCES_KEY, 'XX', 0, old),
      this.rewatch(watched),
    ];
    this.localCounts.clear();
    for (const [n, { room, member }] of members.entries()) {
      const count = this.localCounts.get(room) ?? 0;
      this.localCounts.set(room, count + 1);
      const write = this.change(redis, 'add', room, member.clientId, this.encode(member), count === 0);
      writes.push(write.then((changed) => changed && added(n)));
    }
    try {
      await Promise.all(writes);
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }

  private encode(member: IPresenceMember): string {
    return JSON.stringify({ s: this.registration, u: member.userId, i: member.info });
  }

  async add(room: string, member: IPresenceMember, event?: IPresenceEvent): Promise<boolean> {
    try {
      const redis = this.redis();
      const count = this.localCounts.get(room) ?? 0;
      this.localCounts.set(room, count + 1);
      return await this.change(redis, 'add', room, member.clientId, this.encode(member), count === 0, event);
    } catch (error) {
      this.dirty = true; // the next heartbeat writes every member again
      throw error;
    }
  }

  async remove(room: string, clientId: string, event?: IPresenceEvent): Promise<boolean> {
    try {
      const redis = this.redis();
      const count = (this.localCounts.get(room) ?? 1) - 1;
      if (count > 0) this.localCounts.set(room, count);
      else this.localCounts.delete(room);
      return await this.change(redis, 'remove', room, clientId, '', count <= 0, event);
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }

  /**
   * Single node: queued, and the changes of one turn go out in one script call (see
   * WRITE_SCRIPT) that also publishes their events. Cluster, where the members hash and the
   * room set live in different slots: the commands one by one (in order per node), then the
   * event if the write changed something.
   */
  private change(
    redis: TRedisClient,
    kind: 'add' | 'remove',
    room: string,
    clientId: string,
    value: string,
    touchRoomSet: boolean,
    event?: IPresenceEvent,
  ): Promise<boolean> {
    const membersKey = presenceMembersKey(room);
    if (redis.isCluster)
      return this.changeOnCluster(redis, kind, membersKey, room, clientId, value, touchRoomSet, event);
    return new Promise((resolve, reject) => {
      const roomSet = touchRoomSet ? '1' : '';
      const args: IChange['args'] = [
        kind,
        clientId,
        value,
        room,
        roomSet,
        event?.channel ?? '',
        event?.message ?? '',
      ];
      this.queued.push({ membersKey, watchersKey: presenceWatchersKey(room), args, resolve, reject });
      // One setImmediate per turn for the whole crowd: no timer per join.
      if (this.queued.length === 1) setImmediate(() => this.flush(redis));
    });
  }

  private async changeOnCluster(
    redis: TRedisClient,
    kind: 'add' | 'remove',
    membersKey: string,
    room: string,
    clientId: string,
    value: string,
    touchRoomSet: boolean,
    event?: IPresenceEvent,
  ): Promise<boolean> {
    const send = (...command: TClusterWrite) => {
      const [name, ...args] = command;
      return (redis as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[name]!(...args);
    };
    const add = kind === 'add';
    if (touchRoomSet) void send(add ? 'sadd' : 'srem', presenceInstanceRoomsKey(this.registration), room);
    const changed =
      (await (add ? send('hset', membersKey, clientId, value) : send('hdel', membersKey, clientId))) === 1;
    if (changed && event) this.opts.publish?.(event);
    return changed;
  }

  private flush(redis: TRedisClient): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    const run = scripts(redis)[SCRIPT_COMMAND];
    const roomsKey = presenceInstanceRoomsKey(this.registration);
    for (let start = 0; start < batch.length; start += MAX_CHANGES_PER_CALL) {
      const part = batch.slice(start, start + MAX_CHANGES_PER_CALL);
      const keys = part.flatMap((change) => [change.membersKey, change.watchersKey]);
      keys.push(roomsKey);
      const args = part.flatMap((change) => change.args);
      run.call(redis, keys.length, ...keys, ...args).then(
        (changed) => {
          for (const [n, change] of part.entries()) change.resolve(changed[n] === 1);
        },
        (error: unknown) => {
          for (const change of part) change.reject(error);
        },
      );
    }
  }

  async watch(room: string, on: boolean): Promise<void> {
    const redis = this.redis();
    const key = presenceWatchersKey(room);
    if (on) await redis.hset(key, this.registration, '1');
    else await redis.hdel(key, this.registration);
  }

  async rewatch(rooms: readonly string[]): Promise<void> {
    if (rooms.length === 0) return;
    const redis = this.redis();
    const id = this.registration;
    if (redis.isCluster) {
      await Promise.all(rooms.map((room) => redis.hset(presenceWatchersKey(room), id, '1')));
      return;
    }
    await redis.pipeline(rooms.map((room) => ['hset', presenceWatchersKey(room), id, '1'])).exec();
  }

  async list(room: string): Promise<IPresenceMember[]> {
    const redis = this.redis();
    // Writes still queued go first, so a read sees every join and leave made before it.
    if (this.queued.length > 0) this.flush(redis);
    const fields = await redis.hgetall(presenceMembersKey(room));
    const entries = Object.entries(fields).flatMap(([clientId, raw]) => {
      const entry = decodeEntry(clientId, raw);
      return entry ? [entry] : [];
    });
    const instances = [...new Set(entries.map((entry) => entry.instance))];
    if (instances.length === 0) return [];
    const expiries = await redis.zmscore(PRESENCE_INSTANCES_KEY, ...instances);
    const now = Date.now();
    const live = new Set(instances.filter((_, n) => Number(expiries[n] ?? 0) > now));
    return entries.filter((entry) => live.has(entry.instance)).map((entry) => entry.member);
  }

  /**
   * Removes the members of expired registrations (this instance's old ones included). Skipped
   * until renewals have been answered on time for a whole ttl: after a Redis stall every score
   * may have run out though every instance is alive, and each gets a ttl to renew first.
   */
  async sweep(gone: (room: string, member: IPresenceMember) => void): Promise<void> {
    if (Date.now() - this.steadySince < this.opts.ttl) return;
    const redis = this.redis();
    const dead = (await redis.zrangebyscore(PRESENCE_INSTANCES_KEY, '-inf', Date.now())).filter(
      (id) => id !== this.registration,
    );
    for (const instance of dead) {
      const roomsKey = presenceInstanceRoomsKey(instance);
      for (const room of await redis.smembers(roomsKey)) {
        const key = presenceMembersKey(room);
        const fields = await redis.hgetall(key);
        const members = new Map<string, IPresenceMember>();
        const pairs: string[] = [];
        for (const [clientId, raw] of Object.entries(fields)) {
          const entry = decodeEntry(clientId, raw);
          if (entry?.instance !== instance) continue;
          members.set(clientId, entry.member);
          pairs.push(clientId, raw);
        }
        // In slices, so a crowded room does not hold Redis in one long script.
        for (let start = 0; start < pairs.length; start += MAX_CHANGES_PER_CALL * 2) {
          const slice = pairs.slice(start, start + MAX_CHANGES_PER_CALL * 2);
          for (const clientId of await scripts(redis)[SWEEP_COMMAND](1, key, ...slice)) {
            const member = members.get(clientId);
            if (member) gone(room, member);
          }
        }
        await redis.hdel(presenceWatchersKey(room), instance);
      }
      await redis.del(roomsKey);
      await redis.zrem(PRESENCE_INSTANCES_KEY, instance);
    }
  }

  async stop(): Promise<void> {
    this.localCounts.clear();
    const client = this.opts.client();
    if (client?.status !== 'ready') return;
    // Members were removed as their clients were closed. Marking the liveness expired (rather than
    // deleting it) lets the others' sweep find and announce whatever is left (Redis was away).
    await client.zadd(PRESENCE_INSTANCES_KEY, 0, this.registration).catch(() => {});
  }
}

function decodeEntry(
  clientId: string,
  raw: string,
): { instance: string; member: IPresenceMember } | undefined {
  // Read from Redis: an entry nested too deep to serialize again is skipped like a malformed one.
  if (jsonDepthExceeds(raw, WebSocketLimits.MAX_BUS_JSON_DEPTH)) return undefined;
  const parsed = parseJsonObject(raw);
  if (!parsed || typeof parsed.s !== 'string') return undefined;
  const member: IPresenceMember = { clientId };
  if (typeof parsed.u === 'string') member.userId = parsed.u;
  if (parsed.i !== undefined) member.info = parsed.i;
  return { instance: parsed.s, member };
}
