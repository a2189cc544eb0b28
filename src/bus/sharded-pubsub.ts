import type { Cluster } from 'ioredis';
import { WebSocketChannels } from '../common/constants.ts';
import type { ILogger } from '../common/types.ts';
import { hashSlot } from '../redis/hash-slot.ts';
import type { TPubSubKind } from '../redis/pubsub-kind.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import type { ISubscriberConnection } from './channel-subscriptions.ts';

/**
 * ioredis' sharded subscriber group (Cluster option `shardedSubscribers`): one connection per
 * master, chosen by a channel's slot. Not part of ioredis' typed API; only the barrier reads it.
 */
interface IShardedSubscriberGroup {
  getResponsibleSubscriber(
    slot: number,
  ): { getInstance(): { status: string; ping(): Promise<unknown> } | null } | undefined;
}

/**
 * The subscriber side of a cluster client created with `shardedSubscribers: true`: SSUBSCRIBE /
 * SUNSUBSCRIBE, which ioredis sends to the master owning the channels' slot (one slot per call:
 * ChannelSubscriptions groups by `hashSlot`). After a failover or a slot migration ioredis
 * re-reads the slot map (CLUSTER_SLOTS_REFRESH_MS), opens a subscriber on the new owner and
 * subscribes its channels again there.
 */
export function shardedSubscriber(
  cluster: () => TRedisClient | undefined,
): () => ISubscriberConnection | undefined {
  return () => {
    const client = cluster();
    if (!client) return undefined;
    return {
      status: client.status,
      subscribe: (...channels) => client.ssubscribe(...channels),
      unsubscribe: (...channels) => client.sunsubscribe(...channels),
    };
  };
}

/**
 * The barrier for sharded Pub/Sub: a PING on the subscriber connection of each shard holding one
 * of the rooms' channels (the node whose script published them), answered after every message
 * that node sent before it.
 */
export async function pingShardSubscribers(cluster: TRedisClient, rooms: readonly string[]): Promise<void> {
  const group = (cluster as unknown as { shardedSubscribers?: IShardedSubscriberGroup }).shardedSubscribers;
  if (!group) throw new Error('Redis cluster client has no sharded subscribers');
  const pinged = new Set<unknown>();
  const answers: Promise<unknown>[] = [];
  for (const room of rooms) {
    const instance = group
      .getResponsibleSubscriber(hashSlot(WebSocketChannels.forRoom({ room })))
      ?.getInstance();
    if (instance?.status !== 'ready') {
      throw new Error(`Redis shard subscriber for room ${JSON.stringify(room)} is not connected`);
    }
    if (pinged.has(instance)) continue;
    pinged.add(instance);
    answers.push(instance.ping());
  }
  await Promise.all(answers);
}

/**
 * A fleet mixing classic and sharded Pub/Sub on one cluster silently loses every message between
 * the two halves. On start, each instance looks for subscribers of the other kind on every node
 * (classic subscriptions are per node, sharded ones on the channel's owner) and logs an error
 * naming the problem: whichever half starts second reports it.
 */
export async function reportMixedFleet(
  client: TRedisClient,
  kind: TPubSubKind,
  logger: ILogger,
): Promise<void> {
  const nodes = (client as Cluster).nodes?.('all') ?? [];
  if (nodes.length === 0) return;
  let others = 0;
  try {
    const counts = await Promise.all(
      nodes.map(async (node) => {
        const reply =
          kind === 'sharded'
            ? await node.call('PUBSUB', 'NUMSUB', WebSocketChannels.BROADCAST)
            : await node.call('PUBSUB', 'SHARDNUMSUB', WebSocketChannels.BROADCAST);
        return Number((reply as [string, number])[1] ?? 0);
      }),
    );
    others = counts.reduce((sum, n) => sum + n, 0);
  } catch (error) {
    logger.warn(
      'Could not check the fleet for mixed Pub/Sub kinds',
      error instanceof Error ? error.message : String(error),
    );
    return;
  }
  if (others > 0) {
    const other = kind === 'sharded' ? 'classic' : 'sharded';
    logger.error(
      `Mixed Pub/Sub fleet: this instance uses ${kind} Pub/Sub but ${others} ${other} subscriber(s) of ${WebSocketChannels.BROADCAST} are on the cluster; ` +
        `messages do not cross between the two. Give every RedisClusterHelper the same pubSub option.`,
    );
  }
}
