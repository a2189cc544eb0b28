import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import type { IPublicationInfo, IRoomRecovery } from '../../src/client/index.ts';
import { roomKeys } from '../../src/client/room-keys.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from '../client/support.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { keyRecordingHook, sealedFrames, sealedServerOptions, tryOpen } from './support.ts';

// Sealed rooms over Redis: real redis-server, two real instances. Each instance keeps its own
// generations (a member only ever holds keys of the instance it is connected to); messages reach
// every instance over the bus as for any room, and each seals them once for its own members.

interface Events {
  note: { n: number };
}

let redis: RedisServer;
const servers: ITestServer[] = [];
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  closeAllClients();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

const historyFn = ({ room }: { room: string }) =>
  room.startsWith('secret:h') ? { size: 100, ttl: 60_000 } : undefined;

async function instance(): Promise<ITestServer> {
  const server = await startServer(
    await sealedServerOptions({}, { redis: { host: '127.0.0.1', port: redis.port }, historyFn }),
  );
  servers.push(server);
  return server;
}

async function member(url: string | string[], hook = roomKeys()) {
  const wire = recordingWebSocket();
  const received: Array<{ n: number; info?: IPublicationInfo }> = [];
  const recoveries: IRoomRecovery[] = [];
  const tracked = trackedClient<Events>(url, {
    encryption: true,
    roomKeys: hook,
    WebSocket: wire.WebSocket,
    onRecovery: (r) => recoveries.push(r),
  });
  tracked.client.on('note', (data, info) => received.push(info ? { n: data.n, info } : { n: data.n }));
  const info = await tracked.client.ready;
  return { ...tracked, wire, info, received, recoveries };
}

describe('sealed rooms across two instances (real Redis)', () => {
  test('send() from one instance reaches members of both, each instance sealing once under its own generation', async () => {
    const [a, b] = [await instance(), await instance()];
    const onA = await member(a.url);
    const spy = keyRecordingHook();
    const onB = await member(b.url, spy.hook);
    const stayB = await member(b.url);
    for (const m of [onA, onB, stayB]) expect(await m.client.join('secret:c')).toEqual(['secret:c']);
    a.helper.send({ destination: 'secret:c', payload: { topic: 'note', data: { n: 1 } } });
    await eventually(
      () => [onA, onB, stayB].every((m) => m.received.length === 1),
      5_000,
      'the first message on both instances',
    );
    const genA = a.helper.roomKeys!.generation('secret:c')!;
    const genB = b.helper.roomKeys!.generation('secret:c')!;
    expect(genA).not.toBe(genB);
    expect(sealedFrames(onA.wire.received)[0]!.gen).toBe(genA);
    expect(sealedFrames(onB.wire.received)[0]!.gen).toBe(genB);
    expect(a.helper.roomKeys!.stats.sealed).toBe(1);
    expect(b.helper.roomKeys!.stats.sealed).toBe(1);

    // A member on B is removed: B starts a new generation; A's members never held B's keys.
    b.helper.leaveRoom({ clientId: onB.info.id, room: 'secret:c' });
    expect(b.helper.roomKeys!.generation('secret:c')).not.toBe(genB);
    a.helper.send({ destination: 'secret:c', payload: { topic: 'note', data: { n: 2 } } });
    await eventually(() => onA.received.length === 2 && stayB.received.length === 2, 5_000, 'second message');
    await Bun.sleep(100);
    expect(onB.received.map((m) => m.n)).toEqual([1]);
    // What the remaining member on B received opens with no key the removed one held; nor does A's frame.
    const next = [sealedFrames(stayB.wire.received).at(-1)!, sealedFrames(onA.wire.received).at(-1)!];
    for (const frame of next)
      for (const held of spy.keys) expect(await tryOpen(frame, held.key)).toBeUndefined();
    for (const m of [onA, stayB]) expect(m.errors).toEqual([]);
  });

  test('history rooms: positions on sealed frames, history pages readable, and recovery on another instance', async () => {
    const [a, b] = [await instance(), await instance()];
    const m = await member([a.url, b.url]);
    await m.client.join('secret:h1');
    a.helper.send({ destination: 'secret:h1', payload: { topic: 'note', data: { n: 1 } } });
    await eventually(() => m.received.length === 1, 5_000, 'first publication');
    expect(m.received[0]!.info).toMatchObject({ room: 'secret:h1', offset: 1 });
    // The live frame was sealed (its position outside the ciphertext).
    const sealedLive = m.wire.received.filter((raw) => raw.includes('"ws:sealed"'));
    expect(sealedLive).toHaveLength(1);
    expect(JSON.parse(sealedLive[0]!).offset).toBe(1);

    // Instance A goes away; B goes on publishing; the client comes back on B and recovers.
    await a.stop();
    servers.splice(servers.indexOf(a), 1);
    b.helper.send({ destination: 'secret:h1', payload: { topic: 'note', data: { n: 2 } } });
    b.helper.send({ destination: 'secret:h1', payload: { topic: 'note', data: { n: 3 } } });
    await eventually(() => m.received.length === 3, 8_000, 'recovered publications');
    expect(m.recoveries.at(-1)).toMatchObject({ room: 'secret:h1', recovered: true, recoveredCount: 2 });
    // Live again, now under B's generation (its key came with the re-join).
    b.helper.send({ destination: 'secret:h1', payload: { topic: 'note', data: { n: 4 } } });
    await eventually(() => m.received.length === 4, 5_000, 'live after recovery');
    expect(m.received.map((r) => r.n)).toEqual([1, 2, 3, 4]);
    expect(m.received.map((r) => r.info?.offset)).toEqual([1, 2, 3, 4]);
    expect(sealedFrames(m.wire.received).at(-1)!.gen).toBe(b.helper.roomKeys!.generation('secret:h1')!);

    // A history page, through the member's own session.
    const page = await m.client.history('secret:h1', { limit: 10 });
    expect(page.publications.map((p) => (p.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
    expect(m.errors).toEqual([]);
  });
});
