// roomcast's WebSocketServerHelper, wired the way the README shows, with its defaults
// except heartbeatTimeout: the load-generating clients send no application
// heartbeats, and a long run on a slow machine must not be cut by the 90 s sweep.
// (The sweep itself still runs every heartbeatInterval, as by default.)

import { ECDH } from '../../src/crypto/ecdh-native.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { ROOM } from '../lib/shared.ts';
import { serveHelper } from './helper-api.ts';

// Variants of the same server, one switch each (see serverOf in lib/shared.ts):
// BENCH_METRICS=1 turns `metrics` on (kind helper-metrics); BENCH_HISTORY=1 keeps history
// for the benchmark room (kind helper-history): 1,000 publications, ten minutes.
const METRICS = process.env.BENCH_METRICS === '1';
const HISTORY = process.env.BENCH_HISTORY === '1';
// BENCH_FLEET=1 (kind helper-fleet): the fleet registry on, refreshed every second (five times the
// default rate, so its cost, if any, shows).
const FLEET = process.env.BENCH_FLEET === '1';
// BENCH_SUBSCRIPTION_MODE=rooms (the capacity run's rooms scenarios): one Redis channel per room and
// per client in place of the three patterns; unset keeps the default, 'pattern'.
const MODE = process.env.BENCH_SUBSCRIPTION_MODE === 'rooms' ? 'rooms' : undefined;

interface IAuthData {
  token?: string;
  user?: string;
  /** Bench only: a raw AES-256 key (base64) for the encrypted workload, in place of an ECDH exchange. */
  key?: string;
}

interface IMetadata {
  /** The raw AES-256-GCM key: the fast path (`ECDH.encryptSync`, the runtime's native cipher). */
  key?: Uint8Array;
}

const quiet = () => {};
const logger = {
  debug: quiet,
  info: quiet,
  warn: (...args: unknown[]) => console.error('[helper warn]', ...args),
  error: (...args: unknown[]) => console.error('[helper error]', ...args),
  // As pino at level warn answers: the per-connection debug lines are then not built.
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
};

const ecdh = ECDH.withAlgorithm();
// The helper hands every client of one message the same serialized frame; its
// UTF-8 bytes are kept for the next client (as createEcdhEncryption does).
let lastFrame: string | undefined;
let lastBytes = new Uint8Array(0);

const server = Bun.serve<{ clientId: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response('starting', { status: 503 }),
  websocket: { message() {} },
});

const helper: WebSocketServerHelper<IAuthData, IMetadata> = new WebSocketServerHelper<IAuthData, IMetadata>({
  identifier: 'bench',
  server,
  redisConnection: new RedisHelper({
    name: 'bench',
    host: '127.0.0.1',
    port: Number(process.env.BENCH_REDIS_PORT),
    autoConnect: false,
    logger,
  }),
  logger,
  heartbeatTimeout: 600_000,
  ...(MODE ? { subscriptionMode: MODE } : {}),
  ...(METRICS ? { metrics: true } : {}),
  ...(FLEET ? { fleet: { interval: 1_000 } } : {}),
  ...(HISTORY
    ? { historyFn: ({ room }: { room: string }) => (room === ROOM ? { size: 1_000, ttl: 600_000 } : null) }
    : {}),
  authenticateFn: (data) => {
    if (data.token !== 'ok') return null;
    if (data.key === undefined) return { userId: data.user };
    return { userId: data.user, metadata: { key: new Uint8Array(Buffer.from(data.key, 'base64')) } };
  },
  validateRoomFn: ({ rooms }) => rooms,
  clientConnectedFn: ({ clientId, metadata }) => {
    if (metadata?.key) helper.enableClientEncryption({ clientId });
  },
  // Synchronous: the helper writes each answer at once, without a promise per client.
  outboundTransformer: ({ client, event, data, frame }) => {
    const secret = client.metadata?.key;
    if (!secret) return null;
    const text = frame ?? JSON.stringify({ event, data });
    if (text !== lastFrame) {
      lastBytes = Buffer.from(text, 'utf8');
      lastFrame = text;
    }
    return { event: 'encrypted', data: ecdh.encryptSync({ message: lastBytes, secret }) };
  },
});
await helper.configure();

serveHelper(server, helper, () => helper.getStats().clients);
