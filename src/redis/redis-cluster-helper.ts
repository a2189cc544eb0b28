import type { ClusterOptions } from 'ioredis';
import type { ILogger } from '../common/types.ts';
import { ChannelRoutedCluster } from './channel-routed-cluster.ts';
import { DefaultRedisHelper, type IRedisHelperCallbacks } from './default-redis-helper.ts';
import { reconnectDelay } from './redis-helper.ts';

export interface IRedisClusterHelperOptions extends IRedisHelperCallbacks {
  name: string;
  nodes: Array<{ host: string; port: number; password?: string }>;
  clusterOptions?: ClusterOptions;
  logger?: ILogger;
}

/** How often the cluster client re-reads the slot map (one CLUSTER SLOTS per connection). */
export const CLUSTER_SLOTS_REFRESH_MS = 1_000;

/**
 * Redis Cluster on ioredis. Each PUBLISH goes to the master of its channel's
 * hash slot, so one publisher's messages to a channel stay in order.
 */
export class RedisClusterHelper extends DefaultRedisHelper {
  constructor(opts: IRedisClusterHelperOptions) {
    if (!opts || !Array.isArray(opts.nodes) || opts.nodes.length === 0) {
      throw new Error('[RedisClusterHelper] nodes must be a non-empty array of { host, port }');
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
  }
}
