import { Cluster, type ClusterNode, type ClusterOptions } from 'ioredis';
import { hashSlot } from './hash-slot.ts';

/**
 * An ioredis Cluster that sends every PUBLISH to the master owning the channel
 * name's hash slot (the key rule, hash tags included) instead of a random node.
 *
 * Why: a keyless PUBLISH goes to a random master, and each node forwards it to
 * the others over the cluster bus, so two messages to one channel from one
 * publisher reach a subscriber on another node in either order. Through one
 * node per channel, they keep the order they were sent in. Failover still
 * works: on a closed connection or MOVED, ioredis retries and refreshes its
 * slot map as for any keyed command.
 */
export class ChannelRoutedCluster extends Cluster {
  private readonly seeds: ClusterNode[];

  constructor(startupNodes: ClusterNode[], options?: ClusterOptions) {
    super(startupNodes, options);
    this.seeds = startupNodes;
  }

  /** Keeps the routing in copies (the server helper and the emitter duplicate the client). */
  override duplicate(
    overrideStartupNodes: ClusterNode[] = [],
    overrideOptions: ClusterOptions = {},
  ): Cluster {
    const nodes = overrideStartupNodes.length > 0 ? overrideStartupNodes : this.seeds.slice();
    return new ChannelRoutedCluster(nodes, { ...this.options, ...overrideOptions });
  }

  override sendCommand(...args: Parameters<Cluster['sendCommand']>): unknown {
    const [command, , node] = args;
    if (node === undefined && command.name === 'publish' && command.args.length > 0) {
      // ioredis routes a command by `getSlot()`, cached in its `slot` field; PUBLISH
      // declares no key, so its slot is null unless set here.
      const channel = command.args[0];
      if (typeof channel === 'string' || channel instanceof Uint8Array) {
        (command as unknown as { slot: number }).slot = hashSlot(channel);
      }
    }
    return super.sendCommand(...args);
  }
}
