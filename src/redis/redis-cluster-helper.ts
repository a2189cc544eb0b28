import type { ClusterOptions } from 'ioredis';
import type { ILogger } from '../common/types.ts';
import { ChannelRoutedCluster } from './channel-routed-cluster.ts';
import { DefaultRedisHelper, type IRedisHelperCallbacks } from './default-redis-helper.ts';
import { PUB_SUB_KINDS, type TPubSubKind } from './pubsub-kind.ts';
import { reconnectDelay } from './redis-helper.ts';

export interface IRedisClusterHelperOptions extends IRedisHelperCallbacks {
  name: string;
  nodes: Array<{ host: string; port: number; password?: string }>;
  clusterOptions?: ClusterOptions;
  logger?: ILogger;
  /**
   * `sharded` (default): the server helpers and emitters on this connection use sharded Pub/Sub
   * (SPUBLISH / SSUBSCRIBE, Redis >= 7), so each channel lives on one shard and adding shards
   * adds Pub/Sub capacity. `classic`: PUBLISH / SUBSCRIBE, which the cluster copies to every
   * node. A fleet must not mix the two (see docs/reliability.md).
   */
  pubSub?: TPubSubKind;
}

/** How often the cluster client re-reads the slot map (one CLUSTER SLOTS per connection). */
export const CLUSTER_SLOTS_REFRESH_MS = 1_000;

/**
 * Redis Cluster on ioredis. Each PUBLISH / SPUBLISH goes to the master of its channel's
 * hash slot, so one publisher's messages to a channel stay in order.
 */
export class RedisClusterHelper extends DefaultRedisHelper {
  /** Which Pub/Sub the helpers on this connection use. */
  readonly pubSub: TPubSubKind;

  constructor(opts: IRedisClusterHelperOptions) {
    if (!opts || !Array.isArray(opts.nodes) || opts.nodes.length === 0) {
      throw new Error('[RedisClusterHelper] nodes must be a non-empty array of { host, port }');
    }
    const pubSub = opts.pubSub ?? 'sharded';
    if (!PUB_SUB_KINDS.includes(pubSub)) {
      throw new Error(
        `[RedisClusterHelper] pubSub must be "classic" or "sharded", got ${JSON.stringify(pubSub)}`,
      );
    }
    const password = opts.nodes.find((node) => node.password)?.password;
    const clusterOptions: ClusterOptions = {
      clusterRetryStrategy: reconnectDelay,
      // ioredis re-reads the slot map only on errors; after a failover, PUBLISH
      // (which draws none) would stay on random nodes, out of order, for good.
      slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
      ...opts.clusterOptions,
      redisOptions: { ...(password ? { password } : {}), ...opts.clusterOptions?.redisOptions },
    };
    const nodes = opts.nodes.map(({ host, port }) => ({ host, port }));
    super({ ...opts, client: new ChannelRoutedCluster(nodes, clusterOptions) });
    this.pubSub = pubSub;
  }
}
