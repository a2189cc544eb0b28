// Probe: what one beat of the fleet registry costs the instance that writes it. For each room count,
// a `FleetAnnouncer` reads a source of that many named rooms (sizes from a Map, as the client
// registry answers them) and writes its record to a real redis-server: measured are this process's
// CPU time per beat (user + system: the top-N pass, the JSON and the MULTI's encoding) and the beat's
// wall time (with the Redis round trip). Prints the medians, and the share of one core the registry
// takes at its default interval (5 s). Bounded; writes nothing but the records it removes again.
//
//   bun run bench/probes/fleet-cost.ts [--rooms 100,10000,100000] [--beats 200]
import { FleetAnnouncer } from '../../src/fleet/announcer.ts';
import { resolveFleetOptions } from '../../src/fleet/options.ts';
import { RedisHelper, silentLogger } from '../../src/index.ts';
import { waitForRedisReady } from '../../src/redis/wait-ready.ts';
import { RedisServer } from '../../test/support/redis-server.ts';

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const ROOM_COUNTS = arg('--rooms', '100,10000,100000').split(',').map(Number);
const BEATS = Number(arg('--beats', '200'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

const server = await RedisServer.start();
const redis = new RedisHelper({ name: 'probe', host: '127.0.0.1', port: server.port, logger: silentLogger });
const client = redis.getClient();
await waitForRedisReady(client, 10_000);
const options = resolveFleetOptions('[probe]', true);
try {
  console.log(
    `fleet registry: one beat (top ${options.topRooms} rooms, record written with MULTI), median of ${BEATS}`,
  );
  for (const rooms of ROOM_COUNTS) {
    const sizes = new Map<string, number>();
    for (let n = 0; n < rooms; n++) sizes.set(`room-${n}`, 1 + ((n * 7919) % 5000));
    const announcer = new FleetAnnouncer(
      {
        serverId: `probe-${rooms}`,
        identifier: 'probe',
        client: () => client,
        sizes: () => ({ clients: rooms, users: rooms, rooms }),
        counters: {
          authenticated: 0,
          inboundFrames: 0,
          nativePublishes: 0,
          socketWrites: 0,
          connectionsOpened: 0,
        },
        roomNames: () => sizes.keys(),
        roomSize: (room) => sizes.get(room) ?? 0,
        draining: () => false,
        logger: silentLogger,
      },
      options,
    );
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let beat = 0; beat < BEATS; beat++) {
      const cpuAt = cpuMicros();
      const wallAt = performance.now();
      await announcer.beat();
      wall.push((performance.now() - wallAt) * 1000);
      cpu.push(cpuMicros() - cpuAt);
    }
    await announcer.stop();
    const perBeat = median(cpu);
    const share = perBeat / (options.interval * 1000);
    console.log(
      `${String(rooms).padStart(7)} rooms: ${perBeat.toFixed(0).padStart(6)} µs CPU / beat, ${median(wall).toFixed(0).padStart(6)} µs wall; ${(share * 100).toFixed(4)} % of one core at one beat per ${options.interval} ms`,
    );
  }
} finally {
  await redis.disconnect();
  await server.stop();
}
