import type { IRedisConnection } from '../common/types.ts';
import type { TRedisClient } from './wait-ready.ts';

/**
 * Which Redis Pub/Sub the fleet uses. `classic` (PUBLISH / SUBSCRIBE / PSUBSCRIBE): a single
 * node, or a cluster that forwards every message to every node. `sharded` (SPUBLISH /
 * SSUBSCRIBE, Redis 7): on a cluster, each channel lives on the shard owning its hash slot.
 * The two do not see each other's messages: every instance and emitter of a fleet must agree.
 */
export type TPubSubKind = 'classic' | 'sharded';

export const PUB_SUB_KINDS: readonly TPubSubKind[] = ['classic', 'sharded'];

/** `sharded` when the connection says so (`RedisClusterHelper`'s default) and is a cluster client. */
export function pubSubKindOf(connection: IRedisConnection): TPubSubKind {
  const declared = (connection as { pubSub?: unknown }).pubSub;
  return declared === 'sharded' && isCluster(connection.getClient()) ? 'sharded' : 'classic';
}

export function isCluster(client: TRedisClient): boolean {
  return typeof (client as { nodes?: unknown }).nodes === 'function';
}

/** PUBLISH or SPUBLISH: the one publish command of the fleet's kind. */
export function publishOn(
  kind: TPubSubKind,
  client: TRedisClient,
  channel: string,
  message: string,
): Promise<unknown> {
  return kind === 'sharded' ? client.spublish(channel, message) : client.publish(channel, message);
}
