import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import type { IHistoryPolicy, WebSocketEmitter } from '../../src/index.ts';
import { figure } from '../support/figures.ts';
import { RedisServer } from '../support/redis-server.ts';
import { startServer } from '../support/server.ts';
import { type IFrame, TestClient } from '../support/ws-client.ts';
import { startEmitter } from './support.ts';

/**
 * Faults under traffic with raw clients (the SDK's own fault tests live in test/client):
 * an instance SIGKILLed while the emitter publishes ~200 messages a second, and Redis
 * SIGKILLed and restarted, without and with persistence. Every offset is counted.
 */

const ROOM = 'h-fault';
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 10_000, ttl: 60_000 } : null;
type Positioned = IFrame & { offset: number; epoch: string };

const children: Subprocess[] = [];
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
});

async function spawnInstance(redisPort: number): Promise<{ url: string; child: Subprocess }> {
  const child = Bun.spawn([process.execPath, `${import.meta.dir}/fixtures/instance-child.ts`], {
    env: { ...process.env, REDIS_PORT: String(redisPort) },
    stdout: 'pipe',
    stderr: 'inherit',
  });
  children.push(child);
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  let text = '';
  const deadline = Date.now() + 20_000;
  while (!text.includes('\n')) {
    if (Date.now() > deadline) throw new Error('instance did not start');
    const { value, done } = await reader.read();
    if (done) throw new Error(`instance exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const match = /ready (\S+)/.exec(text);
  if (!match) throw new Error(`unexpected output: ${text}`);
  return { url: match[1]!, child };
}

/** A paced publisher (~200/s); counts what Redis accepted. Rejections (Redis down) are counted apart. */
function publishLoop(emitter: WebSocketEmitter, room: string) {
  let running = true;
  let accepted = 0;
  let rejected = 0;
  let lastOffset = 0;
  const done = (async () => {
    while (running) {
      try {
        const position = await emitter.toRoom({ room, event: 'm', data: accepted + rejected });
        accepted++;
        lastOffset = position!.offset;
      } catch {
        rejected++;
      }
      await Bun.sleep(5);
    }
  })();
  return {
    get accepted() {
      return accepted;
    },
    get rejected() {
      return rejected;
    },
    get lastOffset() {
      return lastOffset;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

async function joinWith(url: string, since?: { offset: number; epoch: string }) {
  const client = await TestClient.authenticated(url);
  client.send({
    event: 'join',
    data: { rooms: [ROOM], ...(since ? { since: { [ROOM]: since } } : {}) },
    id: 'j',
  });
  const reply = await client.next('join');
  return {
    client,
    reply: reply.data as {
      positions: Record<string, { offset: number; epoch: string }>;
      recovered?: Record<string, boolean>;
    },
  };
}

describe('instance SIGKILLed under traffic', () => {
  test('every client reconnects to the other instance and gets exactly every offset, once, in order, all recovered', async () => {
    const redis = await RedisServer.start();
    const [a, b] = await Promise.all([spawnInstance(redis.port), spawnInstance(redis.port)]);
    const { emitter, stop } = await startEmitter(redis.port, historyFn);
    try {
      const sessions = await Promise.all(Array.from({ length: 20 }, () => joinWith(a.url)));
      const loop = publishLoop(emitter, ROOM);
      await Bun.sleep(600);
      a.child.kill('SIGKILL');
      await Promise.all(sessions.map((s) => s.client.closed));
      const killedAt = loop.lastOffset;
      const resumed = await Promise.all(
        sessions.map(async ({ client, reply }) => {
          const frames = client.all('m') as Positioned[];
          const got = frames.map((f) => f.offset);
          const start = reply.positions[ROOM]!;
          // As the SDK does: the last publication's position, else the join's (an empty one when the
          // room had no publication yet, which stands for offset 0 of the stream created after it).
          const last = frames.at(-1) ?? start;
          await Bun.sleep(50); // offline while the emitter keeps publishing
          const again = await joinWith(b.url, { offset: last.offset, epoch: last.epoch });
          return { start, got, again };
        }),
      );
      await Bun.sleep(400);
      await loop.stop();
      const total = loop.lastOffset;
      expect(loop.rejected).toBe(0);
      expect(total).toBeGreaterThan(killedAt);
      for (const { start, got, again } of resumed) {
        expect(again.reply.recovered).toEqual({ [ROOM]: true });
        await again.client.until(
          () => again.client.all('m').length + got.length >= total - start.offset,
          'every offset',
          5_000,
        );
        await Bun.sleep(30);
        const offsets = [...got, ...(again.client.all('m') as Positioned[]).map((f) => f.offset)];
        expect(offsets).toEqual(Array.from({ length: total - start.offset }, (_, i) => start.offset + i + 1));
        again.client.close();
      }
      figure('history.sigkill.published', total);
      figure('history.sigkill.published-before-kill', killedAt);
    } finally {
      await stop();
      b.child.kill('SIGKILL');
      await Promise.all([a.child.exited, b.child.exited]);
      await redis.stop();
    }
  }, 30_000);
});

describe('Redis SIGKILLed and restarted under traffic', () => {
  test.each([
    ['without persistence', false],
    ['with AOF', true],
  ])(
    '%s',
    async (_name, persistent) => {
      const dir = mkdtempSync(join(tmpdir(), 'roomcast-aof-'));
      const aof = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];
      const redis = await RedisServer.start(undefined, persistent ? aof : []);
      const port = redis.port;
      const server = await startServer({
        redis: { host: '127.0.0.1', port },
        validateRoomFn: ({ rooms }) => rooms,
        historyFn,
      });
      const { emitter, stop } = await startEmitter(port, historyFn);
      try {
        const { client, reply } = await joinWith(server.url);
        expect(reply.positions[ROOM]!.epoch).toMatch(/^~/); // never published yet: an empty position
        const loop = publishLoop(emitter, ROOM);
        await Bun.sleep(300);
        await redis.kill();
        await Bun.sleep(300);
        await redis.restart();
        // Wait until publications flow again (the publisher's in-flight command is resent by ioredis).
        const acceptedAtRestart = loop.accepted;
        const deadline = Date.now() + 10_000;
        while (loop.accepted < acceptedAtRestart + 40) {
          if (Date.now() > deadline) throw new Error('traffic did not resume');
          await Bun.sleep(20);
        }
        await loop.stop();
        await Bun.sleep(100);
        const frames = client.all('m') as Positioned[];
        const epoch = frames[0]!.epoch; // the first stream's, created by the first publication
        const before = frames.filter((f) => f.epoch === epoch).map((f) => f.offset);
        const after = frames.filter((f) => f.epoch !== epoch);
        figure(`history.redis-restart.${persistent ? 'aof' : 'none'}.rejected-during-outage`, loop.rejected);
        // As the SDK does: ask again from the last offset before the first gap of the first epoch (a
        // publication whose PUBLISH died with Redis is a gap in the live stream, but in the AOF).
        let contiguous = before[0]!;
        while (before.includes(contiguous + 1)) contiguous++;
        figure(`history.redis-restart.${persistent ? 'aof' : 'none'}.live-gaps`, before.at(-1)! - contiguous);
        const again = await joinWith(server.url, { offset: contiguous, epoch });
        if (persistent) {
          // Same epoch after the restart: recovered, and with what it got live nothing is missing.
          expect(after).toEqual([]);
          expect(again.reply.recovered).toEqual({ [ROOM]: true });
          const top = again.reply.positions[ROOM]!;
          expect(top.epoch).toBe(epoch);
          await again.client.until(
            () => again.client.all('m').length >= top.offset - contiguous,
            'missed ones',
            5_000,
          );
          const seen = new Set([...before, ...(again.client.all('m') as Positioned[]).map((f) => f.offset)]);
          expect([...seen].sort((x, y) => x - y)).toEqual(
            Array.from({ length: top.offset - before[0]! + 1 }, (_, i) => before[0]! + i),
          );
        } else {
          // History lost: a new epoch, told plainly, never a silent gap.
          expect(after.length).toBeGreaterThan(0);
          const newEpoch = after[0]!.epoch;
          const offsets = after.map((f) => f.offset);
          expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => offsets[0]! + i));
          expect(again.reply.recovered).toEqual({ [ROOM]: false });
          expect(again.reply.positions[ROOM]!.epoch).toBe(newEpoch);
        }
        client.close();
        again.client.close();
      } finally {
        await stop();
        await server.stop();
        await redis.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );
});
