import type { ILogger } from '../common/types.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { FleetAnnouncer, type IFleetCounters } from './announcer.ts';
import { resolveFleetOptions } from './options.ts';
import type { IFleetOptions } from './types.ts';

/** What the server helper hands over to announce itself. */
export interface IFleetWiring {
  serverId: string;
  identifier: string;
  /** The bus's publisher; undefined in single-instance mode (no Redis). */
  client: (() => TRedisClient | undefined) | undefined;
  registry: {
    sizes(): { clients: number; users: number; rooms: number };
    roomNames(): Iterable<string>;
    roomSize(room: string): number;
  };
  counters: IFleetCounters;
  draining: () => boolean;
  logger: ILogger;
}

/**
 * The server helper's `fleet` option: an announcer when it is on and there is Redis, else
 * undefined (nothing runs). Throws for a bad value; warns when on without Redis.
 */
export function announceFleet(
  option: boolean | IFleetOptions | undefined,
  wiring: IFleetWiring,
): FleetAnnouncer | undefined {
  const prefix = '[WebSocketServerHelper]';
  if (option === undefined || option === false) return undefined;
  const resolved = resolveFleetOptions(prefix, option);
  const { client, registry } = wiring;
  if (!client) {
    wiring.logger.warn(
      `${prefix} fleet is on but there is no redisConnection: the instance is not announced`,
    );
    return undefined;
  }
  return new FleetAnnouncer(
    {
      serverId: wiring.serverId,
      identifier: wiring.identifier,
      client,
      sizes: () => registry.sizes(),
      counters: wiring.counters,
      roomNames: () => registry.roomNames(),
      roomSize: (room) => registry.roomSize(room),
      draining: wiring.draining,
      logger: wiring.logger,
    },
    resolved,
  );
}
