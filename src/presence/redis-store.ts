import type { TRedisClient } from '../redis/wait-ready.ts';
import { isPlainObject, parseJsonSafely } from '../utils/json.ts';
import { PRESENCE_INSTANCES_KEY, presenceInstanceRoomsKey, presenceMembersKey } from './keys.ts';
import type { IPresenceMember, IPresenceStore } from './types.ts';

type TWrite = [name: 'hset' | 'hdel' | 'sadd' | 'srem', ...args: string[]];

export interface IRedisPresenceOptions {
  /** The connection to run commands on (the bus's publisher); undefined while there is none. */
  client: () => TRedisClient | undefined;
  serverId: string;
  /** How long an instance's members stay valid after its last heartbeat (ms). */
  ttl: number;
}

/**
 * Presence in Redis with per-instance liveness. Each member is a field of its room's hash,
 * tagged with the instance that holds the connection; each instance writes the time its
 * liveness runs out (now + ttl) into one sorted set every ttl / 3. `list` ignores members of
 * instances past that time, and `sweep` deletes them field by field: `HDEL` answers 1 to
 * exactly one caller, which is the one that announces the leave.
 */
export class RedisPresenceStore implements IPresenceStore {
  /** Members of this instance per room, so the room set is trimmed when the last one leaves. */
  private readonly localCounts = new Map<string, number>();
  private readonly queued: Array<{
    command: TWrite;
    resolve(value: unknown): void;
    reject(error: unknown): void;
  }> = [];

  constructor(private readonly opts: IRedisPresenceOptions) {}

  private redis(): TRedisClient {
    const client = this.opts.client();
    if (client?.status !== 'ready')
      throw new Error(`Redis is not connected (status: ${client?.status ?? 'none'})`);
    return client;
  }

  async start(): Promise<void> {
    await this.beat();
  }

  /** Renews this instance's liveness. */
  async beat(): Promise<void> {
    await this.redis().zadd(PRESENCE_INSTANCES_KEY, Date.now() + this.opts.ttl, this.opts.serverId);
  }

  async add(room: string, member: IPresenceMember): Promise<boolean> {
    const redis = this.redis();
    const value = JSON.stringify({ s: this.opts.serverId, u: member.userId, i: member.info });
    const count = this.localCounts.get(room) ?? 0;
    this.localCounts.set(room, count + 1);
    if (count === 0) this.write(redis, ['sadd', presenceInstanceRoomsKey(this.opts.serverId), room]);
    return (await this.write(redis, ['hset', presenceMembersKey(room), member.clientId, value])) === 1;
  }

  async remove(room: string, clientId: string): Promise<boolean> {
    const redis = this.redis();
    const count = (this.localCounts.get(room) ?? 1) - 1;
    if (count > 0) this.localCounts.set(room, count);
    else this.localCounts.delete(room);
    if (count <= 0) this.write(redis, ['srem', presenceInstanceRoomsKey(this.opts.serverId), room]);
    return (await this.write(redis, ['hdel', presenceMembersKey(room), clientId])) === 1;
  }

  /**
   * Queues a write; the writes of one turn go out as one pipeline (one socket write for a crowd
   * of joins instead of one per command), in the order they were made. On Redis Cluster, where a
   * pipeline must stay in one slot, each write is sent on its own (still in order per node).
   */
  private write(redis: TRedisClient, command: TWrite): Promise<unknown> {
    if (redis.isCluster) {
      const [name, ...args] = command;
      return (redis as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[name]!(...args);
    }
    return new Promise((resolve, reject) => {
      this.queued.push({ command, resolve, reject });
      if (this.queued.length === 1) setImmediate(() => this.flush(redis));
    });
  }

  private flush(redis: TRedisClient): void {
    const batch = this.queued.splice(0);
    if (batch.length === 0) return;
    const pipeline = redis.pipeline(batch.map((entry) => entry.command));
    pipeline.exec().then(
      (results) => {
        batch.forEach((entry, n) => {
          const [error, value] = results?.[n] ?? [new Error('no result'), undefined];
          if (error) entry.reject(error);
          else entry.resolve(value);
        });
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
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

  async sweep(gone: (room: string, member: IPresenceMember) => void): Promise<void> {
    const redis = this.redis();
    await this.beat();
    const dead = (await redis.zrangebyscore(PRESENCE_INSTANCES_KEY, '-inf', Date.now())).filter(
      (id) => id !== this.opts.serverId,
    );
    for (const instance of dead) {
      const roomsKey = presenceInstanceRoomsKey(instance);
      for (const room of await redis.smembers(roomsKey)) {
        const key = presenceMembersKey(room);
        const fields = await redis.hgetall(key);
        for (const [clientId, raw] of Object.entries(fields)) {
          const entry = decodeEntry(clientId, raw);
          if (entry?.instance !== instance) continue;
          if ((await redis.hdel(key, clientId)) === 1) gone(room, entry.member);
        }
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
    await client.zadd(PRESENCE_INSTANCES_KEY, 0, this.opts.serverId).catch(() => {});
  }
}

function decodeEntry(
  clientId: string,
  raw: string,
): { instance: string; member: IPresenceMember } | undefined {
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(raw);
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || typeof parsed.s !== 'string') return undefined;
  const member: IPresenceMember = { clientId };
  if (typeof parsed.u === 'string') member.userId = parsed.u;
  if (parsed.i !== undefined) member.info = parsed.i;
  return { instance: parsed.s, member };
}
