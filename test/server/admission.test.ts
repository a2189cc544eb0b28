import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { silentLogger } from '../../src/common/logger.ts';
import { ECDH } from '../../src/crypto/ecdh.ts';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import { WebSocketEmitter } from '../../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { sharedRedis } from '../support/redis-server.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';

// Nothing but the protocol's own answers reaches a socket before it is admitted: not while it
// has not authenticated, not while its encryption handshake is running; on every path a message
// can take (direct, id room, send(), broadcast, acknowledged, from another instance, from an emitter).

let redis: Awaited<ReturnType<typeof sharedRedis>>;
const started: ITestServer[] = [];
let emitterRedis: RedisHelper;
let emitter: WebSocketEmitter;

beforeAll(async () => {
  redis = await sharedRedis();
  emitterRedis = new RedisHelper({ name: 'emitter', ...redis, autoConnect: false, logger: silentLogger });
  emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
  await emitter.configure();
});

afterAll(async () => {
  for (const server of started) await server.stop();
  await emitter.shutdown?.();
  await emitterRedis.disconnect();
  await redis.stop();
});

/** A bare WebSocket that records every frame it receives. */
function recordingSocket(
  url: string,
): Promise<{ ws: WebSocket; frames: Array<{ event: string; data: unknown }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: Array<{ event: string; data: unknown }> = [];
    ws.onmessage = (event) => frames.push(JSON.parse(String(event.data)));
    ws.onopen = () => resolve({ ws, frames });
    ws.onerror = reject;
  });
}

describe('nothing before admission', () => {
  test('an unauthenticated, then mid-handshake socket receives nothing on any path; after connected it does', async () => {
    const encryption = await createEcdhEncryption();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const a = await startServer({
      redis,
      requireEncryption: true,
      metrics: true,
      handshakeFn: async (opts) => {
        await gate; // the handshake hangs until the test has tried every path
        return encryption.handshakeFn(opts);
      },
      outboundTransformer: encryption.outboundTransformer,
    });
    const b = await startServer({ redis });
    started.push(a, b);

    const { ws, frames } = await recordingSocket(a.url);
    await eventually(() => a.helper.getClients().size === 1, 3_000, 'the socket is registered');
    const id = [...a.helper.getClients().keys()][0]!;
    // Each acknowledged send settles to its outcome (held as a value, so nothing goes unhandled).
    const acks: Array<Promise<string>> = [];
    const outcome = (sent: Promise<void>) =>
      sent.then(
        () => 'acknowledged',
        (error) => String(error.code),
      );

    const tryEveryPath = async (tag: string) => {
      a.helper.sendToClient({ clientId: id, event: 'leak', data: tag });
      a.helper.send({ destination: id, payload: { topic: 'leak', data: tag } });
      a.helper.sendToRoom({ room: id, event: 'leak', data: tag });
      a.helper.broadcast({ event: 'leak', data: tag });
      a.helper.send({ payload: { topic: 'leak', data: tag } });
      b.helper.send({ destination: id, payload: { topic: 'leak', data: tag } });
      b.helper.send({ payload: { topic: 'leak', data: tag } });
      acks.push(
        outcome(a.helper.sendToClient({ clientId: id, event: 'leak', data: tag, ack: true, timeout: 300 })),
      );
      acks.push(
        outcome(b.helper.sendToClient({ clientId: id, event: 'leak', data: tag, ack: true, timeout: 300 })),
      );
      await emitter.toClient({ clientId: id, event: 'leak', data: tag });
      await emitter.toRoom({ room: id, event: 'leak', data: tag });
      await Bun.sleep(300); // Redis round trips
    };

    await tryEveryPath('before authenticate');
    const { publicKeyB64 } = await ECDH.withAlgorithm().generateKeyPair();
    ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok', publicKey: publicKeyB64 } }));
    await eventually(
      () => a.helper.getClients({ id })?.state === 'authenticating',
      3_000,
      'the handshake is running',
    );
    await tryEveryPath('during the handshake');
    expect(frames).toEqual([]);
    expect(await Promise.all(acks)).toEqual(Array(4).fill('ACK_TIMEOUT'));

    release();
    await eventually(() => frames.length === 1, 3_000, 'connected');
    expect(frames[0]!.event).toBe('connected');
    // The same paths now reach it, encrypted: the test can see a delivery when there is one.
    a.helper.sendToClient({ clientId: id, event: 'welcome', data: 1 });
    b.helper.send({ destination: id, payload: { topic: 'welcome', data: 2 } });
    await eventually(() => frames.length === 3, 3_000, 'deliveries after admission');
    expect(frames.slice(1).map((f) => f.event)).toEqual(['encrypted', 'encrypted']);

    const scrape = await a.helper.getMetrics()!.metrics();
    const dropped = /roomcast_messages_dropped_total\{reason="not_admitted"\} (\d+)/.exec(scrape);
    expect(Number(dropped?.[1])).toBeGreaterThanOrEqual(2 * 8);
    ws.close();
  });
});
