import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { sharedRedis } from '../support/redis-server.ts';
import { eventually, type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

// The whole suite runs in both subscription modes (see docs/scaling.md).
for (const subscriptionMode of ['pattern', 'rooms'] as const) {
  describe(`${subscriptionMode} subscriptions`, () => {
    let redis: Awaited<ReturnType<typeof sharedRedis>>;
    let a: ITestServer;
    let b: ITestServer;
    const logger = recordingLogger();

    beforeAll(async () => {
      redis = await sharedRedis();
      a = await startServer({ redis, logger, subscriptionMode, validateRoomFn: ({ rooms }) => rooms });
      b = await startServer({ redis, subscriptionMode, validateRoomFn: ({ rooms }) => rooms });
    });
    afterAll(async () => {
      await a.stop();
      await b.stop();
      await redis.stop();
    });

    async function joined(url: string, rooms: string[], user = 'u'): Promise<TestClient> {
      const client = await TestClient.authenticated(url, { token: 'ok', user });
      if (rooms.length > 0) {
        client.send({ event: 'join', data: { rooms } });
        await client.next('join');
      }
      return client;
    }

    describe('send() across two instances sharing Redis', () => {
      test('to a room: local members and remote members each receive exactly once', async () => {
        const onA = await joined(a.url, ['room-1']);
        const onB = await joined(b.url, ['room-1']);
        const outsider = await joined(b.url, []);
        a.helper.send({ destination: 'room-1', payload: { topic: 'news', data: { n: 1 } } });
        expect((await onA.next('news')).data).toEqual({ n: 1 });
        expect((await onB.next('news')).data).toEqual({ n: 1 });
        await expectSilence(outsider, 'news');
        await Bun.sleep(100);
        expect(onA.all('news').length).toBe(1); // our own Redis echo is skipped (serverId dedup)
        expect(onB.all('news').length).toBe(1);
        for (const c of [onA, onB, outsider]) c.close();
      });

      test('to a client id on the other instance, and on this one', async () => {
        const remote = await joined(b.url, []);
        const local = await joined(a.url, []);
        a.helper.send({ destination: remote.id, payload: { topic: 'dm', data: 'to-remote' } });
        a.helper.send({ destination: local.id, payload: { topic: 'dm', data: 'to-local' } });
        expect((await remote.next('dm')).data).toBe('to-remote');
        expect((await local.next('dm')).data).toBe('to-local');
        await Bun.sleep(100);
        expect(remote.all('dm').length).toBe(1);
        expect(local.all('dm').length).toBe(1);
        remote.close();
        local.close();
      });

      test('without destination: broadcast to every authenticated client everywhere', async () => {
        const onA = await joined(a.url, []);
        const onB = await joined(b.url, []);
        const unauthenticated = await TestClient.connect(b.url);
        let called = false;
        a.helper.send({ payload: { topic: 'hello-all', data: 1 }, cb: () => (called = true) });
        await onA.next('hello-all');
        await onB.next('hello-all');
        await expectSilence(unauthenticated, 'hello-all');
        expect(called).toBe(true);
        for (const c of [onA, onB, unauthenticated]) c.close();
      });

      test('a throwing send() callback is logged, not thrown', async () => {
        a.helper.send({
          payload: { topic: 'x', data: 1 },
          cb: () => {
            throw new Error('cb failed');
          },
        });
        await eventually(() => logger.lines.some((l) => l.message === 'send() callback threw'));
      });

      test('send() without a topic is a programming error', () => {
        expect(() => a.helper.send({ payload: { topic: '', data: 1 } })).toThrow('payload.topic');
      });
    });

    describe('WebSocketEmitter', () => {
      let emitterRedis: RedisHelper;
      let emitter: WebSocketEmitter;
      beforeAll(async () => {
        emitterRedis = new RedisHelper({
          name: 'emitter',
          host: redis.host,
          port: redis.port,
          logger: silentLogger,
        });
        emitter = new WebSocketEmitter({
          identifier: 'test-emitter',
          redisConnection: emitterRedis,
          logger: silentLogger,
        });
        await emitter.configure();
      });
      afterAll(async () => {
        await emitter.shutdown();
        await emitterRedis.disconnect();
      });

      test('toClient / toUser / toRoom / broadcast reach clients on every instance', async () => {
        const onA = await joined(a.url, ['jobs'], 'worker-fan');
        const onB = await joined(b.url, ['jobs'], 'worker-fan');
        const other = await joined(b.url, [], 'someone-else');
        await emitter.toClient({ clientId: onB.id, event: 'one', data: 1 });
        await emitter.toUser({ userId: 'worker-fan', event: 'user', data: 2 });
        await emitter.toRoom({ room: 'jobs', event: 'progress', data: { pct: 50 } });
        await emitter.broadcast({ event: 'all', data: 3 });
        expect((await onB.next('one')).data).toBe(1);
        await onA.next('user');
        await onB.next('user');
        expect((await onA.next('progress')).data).toEqual({ pct: 50 });
        await onB.next('progress');
        for (const c of [onA, onB, other]) await c.next('all');
        await expectSilence(other, 'user', 50);
        await expectSilence(other, 'progress', 10);
        await expectSilence(onA, 'one', 10);
        for (const c of [onA, onB, other]) c.close();
      });

      test('toRoom and broadcast honour exclude on every instance', async () => {
        const keep = await joined(a.url, ['ex']);
        const skipA = await joined(a.url, ['ex']);
        const skipB = await joined(b.url, ['ex']);
        await emitter.toRoom({ room: 'ex', event: 'r', data: 1, exclude: [skipA.id, skipB.id] });
        await emitter.broadcast({ event: 'b', data: 1, exclude: [skipB.id] });
        await keep.next('r');
        await keep.next('b');
        await skipA.next('b');
        await expectSilence(skipA, 'r');
        await expectSilence(skipB, 'r', 10);
        await expectSilence(skipB, 'b', 10);
        for (const c of [keep, skipA, skipB]) c.close();
      });

      test('publishes the documented envelope with serverId "emitter" on the documented channels', async () => {
        const spy = new Redis({ host: redis.host, port: redis.port });
        const seen: Array<{ channel: string; message: unknown }> = [];
        spy.on('pmessage', (_p, channel, message) => seen.push({ channel, message: JSON.parse(message) }));
        await spy.psubscribe('ws:*');
        await emitter.toRoom({ room: 'r1', event: 'e', data: { a: 1 } });
        await emitter.toUser({ userId: 'u9', event: 'e', data: null });
        await emitter.toClient({ clientId: 'c9', event: 'e', data: 'x' });
        await emitter.broadcast({ event: 'e', data: 0 });
        await eventually(() => seen.length === 4);
        expect(seen).toEqual([
          {
            channel: 'ws:room:r1',
            message: { serverId: 'emitter', type: 'room', target: 'r1', event: 'e', data: { a: 1 } },
          },
          {
            channel: 'ws:user:u9',
            message: { serverId: 'emitter', type: 'user', target: 'u9', event: 'e', data: null },
          },
          {
            channel: 'ws:client:c9',
            message: { serverId: 'emitter', type: 'client', target: 'c9', event: 'e', data: 'x' },
          },
          {
            channel: 'ws:broadcast',
            message: { serverId: 'emitter', type: 'broadcast', event: 'e', data: 0 },
          },
        ]);
        await spy.quit();
      });

      test('bad arguments and use before configure() reject with clear messages', async () => {
        await expect(emitter.toRoom({ room: '', event: 'e', data: 1 })).rejects.toThrow(
          'room must be a non-empty string',
        );
        await expect(emitter.toClient({ clientId: 'c', event: '', data: 1 })).rejects.toThrow(
          'event must be',
        );
        const idle = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
        expect(idle.identifier).toBe('WebSocketEmitter');
        await expect(idle.broadcast({ event: 'e', data: 1 })).rejects.toThrow('not configured');
      });

      test('an emitter in a separate process reaches clients on both instances', async () => {
        const onA = await joined(a.url, ['from-cli']);
        const onB = await joined(b.url, ['from-cli']);
        const proc = Bun.spawn(
          [
            process.execPath,
            'test/support/scripts/emit.ts',
            String(redis.port),
            JSON.stringify([
              { method: 'toRoom', args: { room: 'from-cli', event: 'cron', data: { job: 'nightly' } } },
            ]),
          ],
          { stdout: 'pipe', stderr: 'pipe' },
        );
        expect(await proc.exited).toBe(0);
        expect((await onA.next('cron')).data).toEqual({ job: 'nightly' });
        expect((await onB.next('cron')).data).toEqual({ job: 'nightly' });
        onA.close();
        onB.close();
      });
    });

    describe('malformed messages on the Redis channels', () => {
      test('are dropped (and logged, rate-limited) without disturbing delivery', async () => {
        const client = await joined(a.url, ['fine']);
        const raw = new Redis({ host: redis.host, port: redis.port });
        const before = a.helper.getStats().bus!.malformed;
        await raw.publish('ws:broadcast', 'not json');
        await raw.publish('ws:room:fine', JSON.stringify({ serverId: 'x', type: 'room', event: 'e' }));
        await raw.publish(
          'ws:room:fine',
          JSON.stringify({ serverId: 'x', type: 'nope', target: 'fine', event: 'e' }),
        );
        await raw.publish(
          'ws:room:fine',
          JSON.stringify({ serverId: 'x', type: 'room', target: 'fine', event: 'e', exclude: 'all' }),
        );
        await raw.publish('ws:room:fine', JSON.stringify([1, 2]));
        await raw.publish(
          'ws:room:fine',
          '{"serverId":"x","type":"room","target":"fine","event":"good","data":{"__proto__":{"p":1},"v":2}}',
        );
        const good = await client.next('good');
        expect(good.data).toEqual({ v: 2 });
        expect(client.frames.filter((f) => f.event === 'e')).toEqual([]);
        expect(a.helper.getStats().bus!.malformed - before).toBe(5);
        expect(logger.lines.some((l) => l.message.startsWith('Dropped malformed Redis message'))).toBe(true);
        await raw.quit();
        client.close();
      });
    });

    describe('receiving without re-serializing', () => {
      test('a remote member gets byte-for-byte the frame a local member gets, from send() and from the emitter', async () => {
        const emitterRedis = new RedisHelper({
          name: 'fwd',
          host: redis.host,
          port: redis.port,
          logger: silentLogger,
        });
        const emitter = new WebSocketEmitter({ redisConnection: emitterRedis, logger: silentLogger });
        await emitter.configure();
        const local = await joined(a.url, ['fwd-room']);
        const remote = await joined(b.url, ['fwd-room']);
        const payloads = [
          { text: 'é 中 😀 "q" \\ /', n: [1.5, -0, 1e21], deep: { data: ',"data":' } },
          'str',
          0,
          null,
        ];
        for (const data of payloads)
          a.helper.send({ destination: 'fwd-room', payload: { topic: 'fwd', data } });
        for (const data of payloads)
          await emitter.toRoom({ room: 'fwd-room', event: 'efwd', data, exclude: ['nobody'] });
        const frames = (c: TestClient, event: string) => c.raw.filter((r) => JSON.parse(r).event === event);
        await remote.until(() => frames(remote, 'fwd').length === 4 && frames(remote, 'efwd').length === 4);
        await local.until(() => frames(local, 'efwd').length === 4);
        expect(frames(remote, 'fwd')).toEqual(frames(local, 'fwd'));
        expect(frames(remote, 'efwd')).toEqual(frames(local, 'efwd'));
        expect(frames(remote, 'fwd')[0]).toBe(`{"event":"fwd","data":${JSON.stringify(payloads[0])}}`);
        local.close();
        remote.close();
        await emitter.shutdown();
        await emitterRedis.disconnect();
      });
    });
  });
}
