// Who is in which room, across every instance of the demo.
//
// The helper knows only the clients connected to its own instance, so a room's
// member list has to live somewhere all instances can see: in memory when there
// is just one instance, in Redis when there are several.

import type { Cluster, Redis } from 'ioredis';

export interface IMember {
  clientId: string;
  name: string;
  /** The instance the member is connected to (its helper's serverId). */
  instanceId: string;
}

export interface IPresenceStore {
  /** Once this instance's id is known (after the server started). */
  start(instanceId: string): Promise<void>;
  add(room: string, member: IMember): Promise<void>;
  remove(room: string, clientId: string): Promise<void>;
  list(room: string): Promise<IMember[]>;
  /** Instances currently alive (1 in single-instance mode). */
  instanceCount(): Promise<number>;
  close(): Promise<void>;
}

/** Single-instance mode: a map in this process. */
export class LocalPresence implements IPresenceStore {
  private readonly rooms = new Map<string, Map<string, IMember>>();

  async start(): Promise<void> {}

  async add(room: string, member: IMember): Promise<void> {
    const members = this.rooms.get(room) ?? new Map<string, IMember>();
    members.set(member.clientId, member);
    this.rooms.set(room, members);
  }

  async remove(room: string, clientId: string): Promise<void> {
    const members = this.rooms.get(room);
    members?.delete(clientId);
    if (members?.size === 0) this.rooms.delete(room);
  }

  async list(room: string): Promise<IMember[]> {
    return [...(this.rooms.get(room)?.values() ?? [])];
  }

  async instanceCount(): Promise<number> {
    return 1;
  }

  async close(): Promise<void> {
    this.rooms.clear();
  }
}

const KEY_PREFIX = 'roomcast-demo';
const INSTANCES_KEY = `${KEY_PREFIX}:instances`;
const ALIVE_EVERY_MS = 3_000;
/** An instance not seen for this long is considered gone (crashed), and so are its members. */
const ALIVE_FOR_MS = 10_000;

/**
 * Many instances: one Redis hash per room (clientId → member), plus a sorted
 * set of instances scored by when each last said it was alive. Members of an
 * instance that stopped saying so (killed, crashed) are dropped when listed.
 */
export class RedisPresence implements IPresenceStore {
  private timer?: ReturnType<typeof setInterval>;
  private instanceId?: string;

  constructor(private readonly redis: Redis | Cluster) {}

  async start(instanceId: string): Promise<void> {
    this.instanceId = instanceId;
    await this.markAlive();
    this.timer = setInterval(() => void this.markAlive().catch(() => {}), ALIVE_EVERY_MS);
  }

  private async markAlive(): Promise<void> {
    if (this.instanceId) await this.redis.zadd(INSTANCES_KEY, Date.now(), this.instanceId);
  }

  async add(room: string, member: IMember): Promise<void> {
    await this.redis.hset(roomKey(room), member.clientId, JSON.stringify(member));
  }

  async remove(room: string, clientId: string): Promise<void> {
    await this.redis.hdel(roomKey(room), clientId);
  }

  async list(room: string): Promise<IMember[]> {
    const [entries, alive] = await Promise.all([this.redis.hgetall(roomKey(room)), this.aliveInstances()]);
    const members: IMember[] = [];
    const stale: string[] = [];
    for (const [clientId, json] of Object.entries(entries)) {
      const member = parseMember(json);
      if (member && alive.has(member.instanceId)) members.push(member);
      else stale.push(clientId);
    }
    if (stale.length > 0) await this.redis.hdel(roomKey(room), ...stale);
    return members;
  }

  async instanceCount(): Promise<number> {
    return (await this.aliveInstances()).size;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.instanceId) await this.redis.zrem(INSTANCES_KEY, this.instanceId);
  }

  private async aliveInstances(): Promise<Set<string>> {
    const ids = await this.redis.zrangebyscore(INSTANCES_KEY, Date.now() - ALIVE_FOR_MS, '+inf');
    return new Set(ids);
  }
}

function roomKey(room: string): string {
  return `${KEY_PREFIX}:presence:${room}`;
}

function parseMember(json: string): IMember | undefined {
  try {
    const value = JSON.parse(json) as Partial<IMember>;
    if (
      typeof value.clientId === 'string' &&
      typeof value.name === 'string' &&
      typeof value.instanceId === 'string'
    ) {
      return { clientId: value.clientId, name: value.name, instanceId: value.instanceId };
    }
  } catch {
    // a foreign or corrupt entry: treated as stale
  }
  return undefined;
}
