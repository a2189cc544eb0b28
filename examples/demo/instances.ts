// How many instances of the demo are running (the status panel's "N instances").
//
// Who is in which room is roomcast's own presence (`presenceFn`, `helper.presence()`);
// this file only counts live instances: each one says it is alive every few seconds.

import type { Cluster, Redis } from 'ioredis';

export interface IInstanceCounter {
  /** Once this instance's id is known (after the server started). */
  start(instanceId: string): Promise<void>;
  /** Instances currently alive (1 in single-instance mode). */
  count(): Promise<number>;
  close(): Promise<void>;
}

/** Single-instance mode: just this one. */
export class LocalInstances implements IInstanceCounter {
  async start(): Promise<void> {}
  async count(): Promise<number> {
    return 1;
  }
  async close(): Promise<void> {}
}

const INSTANCES_KEY = 'roomcast-demo:instances';
const ALIVE_EVERY_MS = 3_000;
/** An instance not seen for this long is considered gone (crashed). */
const ALIVE_FOR_MS = 10_000;

/** Many instances: a sorted set of instance ids scored by when each last said it was alive. */
export class RedisInstances implements IInstanceCounter {
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

  async count(): Promise<number> {
    return this.redis.zcount(INSTANCES_KEY, Date.now() - ALIVE_FOR_MS, '+inf');
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.instanceId) await this.redis.zrem(INSTANCES_KEY, this.instanceId);
  }
}
