// What a process that can PUBLISH on the fleet's Redis can do to the instances, with and without
// `busSecret`: real redis-server, real Bun servers, real WebSocket clients. Every hostile message
// is published in one pipeline between 30 legitimate ones, and every one of those is counted.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { type IHistoryPolicy, RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

const DEPTH = 100_000;
const deepArray = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;

/** A room envelope as our publishers write it (canonical: `data` last, compact). */
function envelope(room: string, event: string, dataJson: string, extra = ''): string {
  return `{"serverId":"outsider","type":"room","target":${JSON.stringify(room)},"event":"${event}"${extra},"data":${dataJson}}`;
}

/** Signs as docs/cluster.md describes it, independently of the library's own signer. */
function signed(secret: string, json: string): string {
  return `s1:${createHmac('sha256', secret).update(json).digest('base64')}:${json}`;
}

async function joined(url: string, rooms: string[], user = 'u'): Promise<TestClient> {
  const client = await TestClient.authenticated(url, { token: 'ok', user });
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms } });
    await client.next('join');
  }
  return client;
}

/**
 * Publishes `hostile` (channel, message pairs) in the middle of 30 legitimate room messages, all in
 * one pipeline, and waits until the listener got all 30 of this batch (exactly once each).
 */
async function amid(
  raw: Redis,
  listener: TestClient,
  batch: string,
  hostile: Array<[string, string]>,
  sign: (json: string) => string = (json) => json,
): Promise<void> {
  const pipeline = raw.pipeline();
  for (let i = 0; i < 30; i++) {
    pipeline.publish('ws:room:fine', sign(envelope('fine', 'n', JSON.stringify({ batch, i }))));
    if (i === 14) for (const [channel, message] of hostile) pipeline.publish(channel, message);
  }
  await pipeline.exec();
  await listener.until(
    () => listener.all('n').filter((f) => f.data.batch === batch).length >= 30,
    `30 neighbours of ${batch}`,
    10_000,
  );
  await Bun.sleep(50);
  const got = listener
    .all('n')
    .filter((f) => f.data.batch === batch)
    .map((f) => f.data.i);
  expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i));
}

describe('without busSecret: hostile messages cannot crash or steer the bus', () => {
  let redis: RedisServer;
  let a: ITestServer;
  let raw: Redis;
  let listener: TestClient;
  const logger = recordingLogger();

  beforeAll(async () => {
    redis = await RedisServer.start();
    a = await startServer({
      redis: { host: '127.0.0.1', port: redis.port },
      logger,
      validateRoomFn: ({ rooms }) => rooms,
    });
    raw = new Redis({ host: '127.0.0.1', port: redis.port });
    listener = await joined(a.url, ['fine']);
  });
  afterAll(async () => {
    listener?.close();
    raw?.disconnect();
    await a?.stop();
    await redis?.stop();
  });

  test('100k-deep nesting in every envelope form, command and answer is dropped and counted; neighbours intact', async () => {
    const victim = await joined(a.url, ['fine']);
    const before = a.helper.getStats().bus!;
    const hostile: Array<[string, string]> = [
      // canonical: split at "data", data forwarded as is
      ['ws:room:fine', envelope('fine', 'deep', deepArray)],
      // a key after data, a space: the whole parse
      ['ws:room:fine', `${envelope('fine', 'deep', deepArray).slice(0, -1)},"z":1}`],
      ['ws:room:fine', envelope('fine', 'deep', deepArray).replace('"type"', ' "type"')],
      // deep in the head, deep with a history position, a broadcast, a user and a client message
      ['ws:room:fine', envelope('fine', 'deep', '1', `,"meta":${deepArray}`)],
      ['ws:room:fine', `${envelope('fine', 'deep', deepArray).slice(0, -1)},"offset":1,"epoch":"e1"}`],
      ['ws:broadcast', `{"serverId":"outsider","type":"broadcast","event":"deep","data":${deepArray}}`],
      ['ws:user:u', `{"serverId":"outsider","type":"user","target":"u","event":"deep","data":${deepArray}}`],
      [
        `ws:client:${victim.id}`,
        `{"serverId":"outsider","type":"client","target":"${victim.id}","event":"deep","data":${deepArray}}`,
      ],
      // a deliver command to a real client, a join with deep rooms, a deep answer
      [
        'ws:command',
        `{"from":"outsider","command":{"kind":"deliver","clientId":"${victim.id}","event":"deep","data":${deepArray},"ackId":"x1","timeout":1000}}`,
      ],
      [
        'ws:command',
        `{"from":"outsider","command":{"kind":"join","target":{"clientId":"${victim.id}"},"rooms":${deepArray}}}`,
      ],
      [`ws:instance:${a.helper.getStats().serverId}`, `{"kind":"ack","ackId":${deepArray}}`],
    ];
    await amid(raw, listener, 'deep', hostile);
    await amid(raw, victim, 'deep-victim', []);
    expect(victim.all('deep')).toEqual([]);
    expect(listener.all('deep')).toEqual([]);
    expect(a.helper.getStats().bus!.malformed - before.malformed).toBe(hostile.length);
    // The log says it, without one line per message.
    const lines = logger.lines.filter((l) => l.message.startsWith('Dropped'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
    victim.close();
  });

  test('an envelope over maxEnvelopeBytes (default 1 MiB) is dropped and counted; neighbours intact', async () => {
    const before = a.helper.getStats().bus!.oversize;
    const big = JSON.stringify('x'.repeat(2 * 1024 * 1024));
    await amid(raw, listener, 'big', [
      ['ws:room:fine', envelope('fine', 'big', big)],
      [
        'ws:command',
        `{"from":"outsider","command":{"kind":"join","target":{"userId":"u"},"rooms":[${big}]}}`,
      ],
    ]);
    expect(listener.all('big')).toEqual([]);
    expect(a.helper.getStats().bus!.oversize - before).toBe(2);
  });

  test('a room envelope cannot reach an internal topic (the broadcast topic, ws:…)', async () => {
    const bystander = await joined(a.url, []);
    const before = a.helper.getStats().bus!.malformed;
    await amid(raw, listener, 'steer', [
      ['ws:room:ws:internal:broadcast', envelope('ws:internal:broadcast', 'steer', '1')],
      ['ws:room:ws:anything', envelope('ws:anything', 'steer', '1')],
      ['ws:room:ws:presence-events:ws:x', envelope('ws:presence-events:ws:x', 'steer', '1')],
    ]);
    await expectSilence(bystander, 'steer');
    expect(listener.all('steer')).toEqual([]);
    expect(a.helper.getStats().bus!.malformed - before).toBe(3);
    bystander.close();
  });

  test('2,000 forged deliver commands: at most 256 held for one client, the rest refused and counted', async () => {
    const victim = await joined(a.url, ['fine']);
    const before = a.helper.getStats().bus!.deliverRefused;
    const pipeline = raw.pipeline();
    for (let i = 0; i < 2_000; i++) {
      pipeline.publish(
        'ws:command',
        JSON.stringify({
          from: 'outsider',
          command: {
            kind: 'deliver',
            clientId: victim.id,
            event: 'forged',
            data: i,
            ackId: `f${i}`,
            timeout: 600_000,
          },
        }),
      );
    }
    await pipeline.exec();
    await eventually(
      () => a.helper.getStats().bus!.deliverRefused - before === 2_000 - 256,
      10_000,
      'refusals',
    );
    await amid(raw, victim, 'after-flood', []);
    expect(victim.all('forged').length).toBe(256);
    victim.close();
  }, 20_000);

  test('send() and the emitter refuse a payload over maxEnvelopeBytes before sending anything', async () => {
    const helper = new RedisHelper({ name: 'e', host: '127.0.0.1', port: redis.port, logger: silentLogger });
    const emitter = new WebSocketEmitter({
      redisConnection: helper,
      logger: silentLogger,
      maxEnvelopeBytes: 4096,
    });
    await emitter.configure();
    const data = 'y'.repeat(5000);
    await expect(emitter.toRoom({ room: 'fine', event: 'e-big', data })).rejects.toThrow('maxEnvelopeBytes');
    const rooms = Array.from({ length: 30 }, (_, i) => String(i).padEnd(200, 'r'));
    await expect(emitter.joinRooms({ userId: 'u', rooms })).rejects.toThrow('maxEnvelopeBytes');
    await expect(emitter.toRoom({ room: 'ws:internal:broadcast', event: 'e', data: 1 })).rejects.toThrow(
      'valid room name',
    );
    expect(() =>
      a.helper.send({ destination: 'fine', payload: { topic: 's-big', data: 'z'.repeat(1024 * 1024 + 1) } }),
    ).toThrow('maxEnvelopeBytes');
    await expectSilence(listener, 's-big');
    await emitter.shutdown();
    await helper.disconnect();
  });
});

const SECRET = 'fleet-secret-0123456789abcdef';
const OLD = 'old-fleet-secret-0123456789';
const NEW = 'new-fleet-secret-0123456789';
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 100, ttl: 60_000 } : null;

describe('with busSecret: only signed messages act', () => {
  let redis: RedisServer;
  let a: ITestServer;
  let b: ITestServer;
  let raw: Redis;
  let emitterRedis: RedisHelper;
  let emitter: WebSocketEmitter;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const common = {
      redis: { host: '127.0.0.1', port: redis.port },
      validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms.filter((room) => room !== 'secret-room'),
      historyFn,
      busSecret: SECRET,
    };
    a = await startServer(common);
    b = await startServer(common);
    raw = new Redis({ host: '127.0.0.1', port: redis.port });
    emitterRedis = new RedisHelper({ name: 'e', host: '127.0.0.1', port: redis.port, logger: silentLogger });
    emitter = new WebSocketEmitter({
      redisConnection: emitterRedis,
      logger: silentLogger,
      busSecret: SECRET,
      historyFn,
    });
    await emitter.configure();
  });
  afterAll(async () => {
    raw?.disconnect();
    await emitter?.shutdown();
    await emitterRedis?.disconnect();
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  test('two instances and an emitter with the same secret deliver everything, history and commands included', async () => {
    const onA = await joined(a.url, ['room-1', 'h-1'], 'ua');
    const onB = await joined(b.url, ['room-1', 'h-1'], 'ub');
    a.helper.send({ destination: 'room-1', payload: { topic: 'plain', data: 1 } });
    a.helper.send({ destination: 'h-1', payload: { topic: 'kept', data: 2 } });
    await emitter.toRoom({ room: 'h-1', event: 'kept', data: 3 });
    await emitter.toUser({ userId: 'ub', event: 'to-user', data: 4 });
    a.helper.send({ payload: { topic: 'everyone', data: 5 } });
    for (const client of [onA, onB]) {
      expect((await client.next('plain')).data).toBe(1);
      await client.until(() => client.all('kept').length === 2, 'two history publications');
      expect(client.all('kept').map((f) => f.data)).toEqual([2, 3]);
      await client.next('everyone');
    }
    expect((await onB.next('to-user')).data).toBe(4);
    // Acknowledged across instances, and server commands from the other instance and the emitter.
    const acked = a.helper.sendToClient({
      clientId: onB.id,
      event: 'ask',
      data: 6,
      ack: true,
      timeout: 3_000,
    });
    const frame = await onB.next('ask');
    onB.send({ event: 'ws:ack', id: (frame as { ack?: string }).ack });
    await acked;
    expect((await a.helper.joinRooms({ clientId: onB.id, rooms: ['room-2'] })).affected).toBe(1);
    await emitter.joinRooms({ clientId: onB.id, rooms: ['room-3'] });
    await eventually(() => b.helper.getClientsByRoom({ room: 'room-3' }).length === 1, 3_000, 'emitter join');
    a.helper.send({ destination: 'room-2', payload: { topic: 'r2', data: 7 } });
    expect((await onB.next('r2')).data).toBe(7);
    await emitter.disconnect({ clientId: onA.id, code: 4100, reason: 'bye' });
    expect((await onA.closedWithin()).code).toBe(4100);
    for (const server of [a, b]) {
      expect(server.helper.getStats().bus!.unauthenticated).toBe(0);
      expect(server.helper.getStats().bus!.malformed).toBe(0);
    }
    onB.close();
  });

  test('unsigned and badly signed messages deliver, join, kick, ack and schedule nothing; each is counted', async () => {
    const victim = await joined(b.url, ['fine'], 'victim');
    const before = b.helper.getStats().bus!.unauthenticated;
    const join = JSON.stringify({
      from: 'outsider',
      command: { kind: 'join', target: { clientId: victim.id }, rooms: ['secret-room'] },
    });
    const kick = JSON.stringify({
      from: 'outsider',
      command: { kind: 'disconnect', target: { userId: 'victim' }, code: 4000, reason: 'forged' },
    });
    const deliver = JSON.stringify({
      from: 'outsider',
      command: {
        kind: 'deliver',
        clientId: victim.id,
        event: 'forged',
        data: 1,
        ackId: 'z',
        timeout: 600_000,
      },
    });
    const room = envelope('fine', 'forged', '1');
    const answer = JSON.stringify({ kind: 'ack', ackId: 'z' });
    const hostile: Array<[string, string]> = [];
    for (const [channel, message] of [
      ['ws:room:fine', room],
      ['ws:command', join],
      ['ws:command', kick],
      ['ws:command', deliver],
      [`ws:instance:${b.helper.getStats().serverId}`, answer],
    ] as const) {
      hostile.push([channel, message]); // unsigned
      hostile.push([channel, signed('not-the-fleet-secret-xxxxx', message)]); // wrong secret
      hostile.push([channel, `s1:${'A'.repeat(43)}=:${message}`]); // a made-up MAC
    }
    await amid(raw, victim, 'forged', hostile, (json) => signed(SECRET, json));
    expect(victim.all('forged')).toEqual([]);
    expect(victim.closeInfo).toBeUndefined();
    expect(b.helper.getClientsByRoom({ room: 'secret-room' })).toEqual([]);
    expect(b.helper.getStats().bus!.unauthenticated - before).toBe(hostile.length);
    victim.close();
  });
});

describe('with busSecret: rotating the secret', () => {
  let redis: RedisServer;
  let a: ITestServer;
  let b: ITestServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const common = {
      redis: { host: '127.0.0.1', port: redis.port },
      validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
    };
    // A still signs with the old secret only; B already signs with the new one and accepts both.
    a = await startServer({ ...common, busSecret: OLD });
    b = await startServer({ ...common, busSecret: [NEW, OLD] });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  test('B accepts what A signs with the old secret; A drops what only the new one signs', async () => {
    const onA = await joined(a.url, ['r']);
    const onB = await joined(b.url, ['r']);
    a.helper.send({ destination: 'r', payload: { topic: 'from-a', data: 1 } });
    expect((await onB.next('from-a')).data).toBe(1);
    b.helper.send({ destination: 'r', payload: { topic: 'from-b', data: 2 } });
    await expectSilence(onA, 'from-b');
    expect(a.helper.getStats().bus!.unauthenticated).toBeGreaterThanOrEqual(1);
    expect(b.helper.getStats().bus!.unauthenticated).toBe(0);
    onA.close();
    onB.close();
  });
});
