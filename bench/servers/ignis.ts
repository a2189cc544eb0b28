// Upstream Ignis 0.0.7 (`@venizia/ignis-helpers`, a benchmark-only dependency):
// its WebSocketServerHelper and its RedisHelper, wired from their public API the
// same way servers/helper.ts wires roomcast's, with Ignis's own ECDH.encrypt in
// the outbound transformer for the encrypted workloads.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveHelper } from './helper-api.ts';

// Ignis's logger also writes log files (by default into the working directory): keep them
// out of the repo, in a temporary folder removed when the server exits.
if (process.env.APP_ENV_LOGGER_FOLDER_PATH === undefined) {
  const logs = mkdtempSync(join(tmpdir(), 'bench-ignis-logs-'));
  process.env.APP_ENV_LOGGER_FOLDER_PATH = logs;
  process.on('exit', () => rmSync(logs, { recursive: true, force: true }));
}
const { ECDH, RedisHelper, WebSocketServerHelper } = await import('@venizia/ignis-helpers');

interface IAuthData extends Record<string, unknown> {
  token?: string;
  user?: string;
  /** Bench only: a raw AES-256 key (base64) for the encrypted workload, in place of an ECDH exchange. */
  key?: string;
}

interface IMetadata extends Record<string, unknown> {
  key?: CryptoKey;
}

const ecdh = ECDH.withAlgorithm({ algorithm: 'ecdh-p256' });
/** The plaintext of the message being fanned out, serialized once for all encrypted clients. */
const plaintext = new WeakMap<object, string>();

const server = Bun.serve<{ clientId: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response('starting', { status: 503 }),
  websocket: { message() {} },
});

const helper = new WebSocketServerHelper<IAuthData, IMetadata>({
  identifier: 'bench-ignis',
  // Ignis types ArrayBufferView where Bun's types name each view: the same server at run time.
  server: server as never,
  redisConnection: new RedisHelper({
    name: 'bench-ignis',
    host: '127.0.0.1',
    port: Number(process.env.BENCH_REDIS_PORT),
    password: '',
    autoConnect: false,
  }),
  heartbeatTimeout: 600_000,
  authenticateFn: async (data) => {
    if (data.token !== 'ok') return null;
    if (data.key === undefined) return { userId: data.user };
    const key = await crypto.subtle.importKey(
      'raw',
      Buffer.from(data.key, 'base64'),
      { name: 'AES-GCM' },
      false,
      ['encrypt'],
    );
    return { userId: data.user, metadata: { key } };
  },
  validateRoomFn: ({ rooms }) => rooms,
  clientConnectedFn: ({ clientId, metadata }) => {
    if (metadata?.key) helper.enableClientEncryption({ clientId });
  },
  outboundTransformer: async ({ client, event, data }) => {
    const secret = client.metadata?.key;
    if (!secret) return null;
    let message = plaintext.get(data as object);
    if (message === undefined) {
      message = JSON.stringify({ event, data });
      plaintext.set(data as object, message);
    }
    return { event: 'encrypted', data: await ecdh.encrypt({ message, secret }) };
  },
});
// Ignis logs every connection and disconnection at `info` (winston: the console and log files).
// roomcast's server here runs with `info` and `debug` silenced through its `logger` option; Ignis's
// helper takes no logger, so the same is done on the prototype of its logger class (every Ignis
// logger in this process). Warnings and errors still go out.
const ignisLogger = Object.getPrototypeOf(helper.getLogger()) as Record<'info' | 'debug', unknown>;
ignisLogger.info = () => {};
ignisLogger.debug = () => {};
await helper.configure();

serveHelper(server, helper, () => (helper.getClients() as Map<string, unknown>).size);
