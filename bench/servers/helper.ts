// roomcast's WebSocketServerHelper, wired the way the README shows, with its defaults
// except heartbeatTimeout: the load-generating clients send no application
// heartbeats, and a long run on a slow machine must not be cut by the 90 s sweep.
// (The sweep itself still runs every heartbeatInterval, as by default.)

import { ECDH } from '../../src/crypto/ecdh.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { EVENT, type IPublishRequest, makeData } from '../lib/shared.ts';
import { control, watchParent } from './control.ts';

interface IAuthData {
  token?: string;
  user?: string;
  /** Bench only: a raw AES-256 key (base64) for the encrypted workload, in place of an ECDH exchange. */
  key?: string;
}

interface IMetadata {
  key?: CryptoKey;
}

const quiet = () => {};
const logger = {
  debug: quiet,
  info: quiet,
  warn: (...args: unknown[]) => console.error('[helper warn]', ...args),
  error: (...args: unknown[]) => console.error('[helper error]', ...args),
};

const ecdh = ECDH.withAlgorithm();
/** The plaintext of the message being fanned out, serialized once for every encrypted client. */
const plaintext = new WeakMap<object, string>();

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
  authenticateFn: (data) => {
    if (data.token !== 'ok') return null;
    if (data.key === undefined) return { userId: data.user };
    return crypto.subtle
      .importKey('raw', Buffer.from(data.key, 'base64'), { name: 'AES-GCM' }, false, ['encrypt'])
      .then((key) => ({ userId: data.user, metadata: { key } }));
  },
  validateRoomFn: ({ rooms }) => rooms,
  clientConnectedFn: ({ clientId, metadata }) => {
    if (metadata?.key) helper.enableClientEncryption({ clientId });
  },
  outboundTransformer: async ({ client, event, data }) => {
    const key = client.metadata?.key;
    if (!key) return null;
    let message = plaintext.get(data as object);
    if (message === undefined) {
      message = JSON.stringify({ event, data });
      plaintext.set(data as object, message);
    }
    return { event: 'encrypted', data: await ecdh.encrypt({ message, secret: key }) };
  },
});
await helper.configure();

function publish(req: IPublishRequest): void {
  for (let i = 0; i < req.count; i++) {
    const data = makeData(req.seq + i, req.size);
    switch (req.mode) {
      case 'room':
        helper.sendToRoom({ room: req.room, event: EVENT, data });
        break;
      case 'room-exclude':
        helper.sendToRoom({
          room: req.room,
          event: EVENT,
          data,
          exclude: req.exclude === undefined ? [] : [req.exclude],
        });
        break;
      case 'broadcast':
        helper.broadcast({ event: EVENT, data });
        break;
      case 'send':
        helper.send({ destination: req.room, payload: { topic: EVENT, data } });
        break;
    }
  }
}

const path = helper.getPath();
server.reload({
  async fetch(req, srv) {
    const answer = await control(req, { clients: () => helper.getStats().clients, publish });
    if (answer) return answer;
    if (new URL(req.url).pathname === path) {
      if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
      return new Response('upgrade failed', { status: 500 });
    }
    return new Response('not found', { status: 404 });
  },
  websocket: helper.getBunWebSocketHandler() as never,
});

watchParent();
console.log(`READY ${server.port}`);
