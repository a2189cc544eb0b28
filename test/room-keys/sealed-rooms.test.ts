import { afterEach, describe, expect, test } from 'bun:test';
import { roomKeys } from '../../src/client/room-keys.ts';
import {
  closeAllClients,
  errorCodes,
  eventually,
  recordingWebSocket,
  trackedClient,
} from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { keyRecordingHook, sealedFrames, sealedServerOptions, tryOpen } from './support.ts';

interface Events {
  note: { n: number; text: string };
}

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

async function member(url: string, hook = roomKeys()) {
  const wire = recordingWebSocket();
  const tracked = trackedClient<Events>(url, { encryption: true, roomKeys: hook, WebSocket: wire.WebSocket });
  const info = await tracked.client.ready;
  const received: Events['note'][] = [];
  tracked.client.on('note', (data) => received.push(data));
  return { ...tracked, wire, info, received };
}

describe('sealed rooms (roomKeys): one encryption per message, native fan-out', () => {
  test('members get every message; each is sealed once and published once, whatever the number of members', async () => {
    server = await startServer(await sealedServerOptions());
    const members = await Promise.all([1, 2, 3, 4].map(() => member(server!.url)));
    for (const m of members) expect(await m.client.join('secret:team')).toEqual(['secret:team']);
    const keys = server.helper.roomKeys!;
    const before = { ...keys.stats };
    for (let n = 0; n < 10; n++)
      server.helper.sendToRoom({ room: 'secret:team', event: 'note', data: { n, text: 'classified' } });
    await eventually(() => members.every((m) => m.received.length === 10), 3_000, 'sealed messages');
    for (const m of members) {
      expect(m.received.map((note) => note.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(m.errors).toEqual([]);
      // On the wire: the room's messages as `ws:sealed` only, never the plaintext.
      expect(sealedFrames(m.wire.received)).toHaveLength(10);
      expect(m.wire.received.some((raw) => raw.includes('classified'))).toBe(false);
    }
    expect(keys.stats.sealed - before.sealed).toBe(10); // 10 messages, 4 members: 10 encryptions
    expect(keys.stats.keysSent).toBe(4); // one key per member, through its session
    // Every member saw the very same bytes: one frame, fanned out natively.
    const first = members[0]!.wire.received.filter((raw) => raw.includes('"ws:sealed"'));
    for (const m of members)
      expect(m.wire.received.filter((raw) => raw.includes('"ws:sealed"'))).toEqual(first);
  });

  test('a removed member cannot open the next message: not on its wire, and not with any key it held', async () => {
    server = await startServer(await sealedServerOptions());
    const stay = await member(server.url);
    const spy = keyRecordingHook();
    const gone = await member(server.url, spy.hook);
    await stay.client.join('secret:ops');
    await gone.client.join('secret:ops');
    server.helper.sendToRoom({ room: 'secret:ops', event: 'note', data: { n: 1, text: 'before' } });
    await eventually(() => gone.received.length === 1 && stay.received.length === 1, 3_000, 'first message');
    const genBefore = server.helper.roomKeys!.generation('secret:ops');
    const keysBefore = server.helper.roomKeys!.stats.keysSent;

    server.helper.leaveRoom({ clientId: gone.info.id, room: 'secret:ops' });
    const genAfter = server.helper.roomKeys!.generation('secret:ops');
    expect(genAfter).not.toBe(genBefore);
    // The rotation cost one key (one per-client encryption) per remaining member: here one.
    expect(server.helper.roomKeys!.stats.keysSent - keysBefore).toBe(1);
    const goneWireBefore = gone.wire.received.length;

    server.helper.sendToRoom({ room: 'secret:ops', event: 'note', data: { n: 2, text: 'after-removal' } });
    await eventually(() => stay.received.length === 2, 3_000, 'the next message');
    expect(stay.received[1]).toEqual({ n: 2, text: 'after-removal' });
    await Bun.sleep(100);
    // Its wire carried nothing of the room after the removal.
    expect(sealedFrames(gone.wire.received.slice(goneWireBefore))).toEqual([]);
    expect(gone.received).toHaveLength(1);
    // And the bytes the remaining member received (which the removed one might capture) do not
    // open with any key the removed member ever held.
    const next = sealedFrames(stay.wire.received).at(-1)!;
    expect(next.gen).toBe(genAfter!);
    expect(spy.keys.length).toBeGreaterThan(0);
    expect(spy.keys.some((held) => held.gen === next.gen)).toBe(false);
    for (const held of spy.keys) expect(await tryOpen(next, held.key)).toBeUndefined();
    // While the first message opens with the key it held then (the test would catch a broken open).
    const earlier = sealedFrames(stay.wire.received)[0]!;
    const opened = await Promise.all(spy.keys.map((held) => tryOpen(earlier, held.key)));
    expect(opened.some((text) => text?.includes('before'))).toBe(true);
  });

  test('a client that leaves by itself, or disconnects, makes a new generation for the others', async () => {
    server = await startServer(await sealedServerOptions());
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => member(server!.url)));
    for (const m of [a!, b!, c!]) await m.client.join('secret:x');
    const keys = server.helper.roomKeys!;
    const g1 = keys.generation('secret:x');
    await c!.client.leave('secret:x');
    const g2 = keys.generation('secret:x');
    expect(g2).not.toBe(g1);
    b!.client.close();
    await eventually(() => keys.generation('secret:x') !== g2, 3_000, 'rotation on disconnect');
    server.helper.sendToRoom({ room: 'secret:x', event: 'note', data: { n: 7, text: 'x' } });
    await eventually(() => a!.received.length === 1, 3_000, 'message after two rotations');
    expect(a!.errors).toEqual([]);
    expect(c!.received).toEqual([]);
    // rotate(): a new generation on demand, its key to the one member left.
    const g3 = keys.generation('secret:x');
    const sent = keys.stats.keysSent;
    expect(keys.rotate('secret:x')).toBe(true);
    expect(keys.generation('secret:x')).not.toBe(g3);
    expect(keys.stats.keysSent - sent).toBe(1);
    expect(keys.rotate('secret:nobody-here')).toBe(false);
    server.helper.sendToRoom({ room: 'secret:x', event: 'note', data: { n: 8, text: 'x' } });
    await eventually(() => a!.received.length === 2, 3_000, 'message after rotate()');
    expect(new Set(sealedFrames(a!.wire.received).map((f) => f.gen)).size).toBe(2);
  });

  test('a burst of removals costs one rotation: one key per remaining member, not one per removal', async () => {
    server = await startServer(await sealedServerOptions());
    const members = await Promise.all(Array.from({ length: 12 }, () => member(server!.url)));
    for (const m of members) await m.client.join('secret:burst');
    const keys = server.helper.roomKeys!;
    const before = { ...keys.stats };
    const gone = members.slice(0, 8);
    for (const m of gone) server.helper.leaveRoom({ clientId: m.info.id, room: 'secret:burst' });
    server.helper.sendToRoom({ room: 'secret:burst', event: 'note', data: { n: 1, text: 'after' } });
    expect(keys.stats.generations - before.generations).toBe(1);
    expect(keys.stats.keysSent - before.keysSent).toBe(4);
    const stay = members.slice(8);
    await eventually(() => stay.every((m) => m.received.length === 1), 3_000, 'the remaining members');
    await Bun.sleep(50);
    for (const m of gone) expect(m.received).toEqual([]);
    for (const m of stay) expect(m.errors).toEqual([]);
  });

  test('a new generation on a period (rotateInterval); members keep reading across it', async () => {
    server = await startServer(await sealedServerOptions({ rotateInterval: 150 }));
    const m = await member(server.url);
    await m.client.join('secret:p');
    const keys = server.helper.roomKeys!;
    const seen = new Set<string>();
    for (let n = 0; n < 6; n++) {
      seen.add(keys.generation('secret:p')!);
      server.helper.sendToRoom({ room: 'secret:p', event: 'note', data: { n, text: 'tick' } });
      await Bun.sleep(80);
    }
    await eventually(() => m.received.length === 6, 3_000, 'messages across rotations');
    expect(seen.size).toBeGreaterThan(1);
    expect(new Set(sealedFrames(m.wire.received).map((f) => f.gen)).size).toBeGreaterThan(1);
    expect(m.errors).toEqual([]);
  });

  test('rotateOnJoin: a joiner cannot open frames sealed before it joined', async () => {
    server = await startServer(await sealedServerOptions({ rotateOnJoin: true }));
    const early = await member(server.url);
    await early.client.join('secret:j');
    server.helper.sendToRoom({ room: 'secret:j', event: 'note', data: { n: 1, text: 'old' } });
    await eventually(() => early.received.length === 1, 3_000, 'old message');
    const spy = keyRecordingHook();
    const late = await member(server.url, spy.hook);
    await late.client.join('secret:j');
    server.helper.sendToRoom({ room: 'secret:j', event: 'note', data: { n: 2, text: 'new' } });
    await eventually(() => early.received.length === 2 && late.received.length === 1, 3_000, 'new message');
    expect(late.received).toEqual([{ n: 2, text: 'new' }]);
    const old = sealedFrames(early.wire.received)[0]!;
    for (const held of spy.keys) expect(await tryOpen(old, held.key)).toBeUndefined();
  });

  test('a client without encryption is not granted a sealed room; other rooms as usual', async () => {
    server = await startServer(await sealedServerOptions({}, { requireEncryption: false }));
    const plain = trackedClient<Events>(server.url, {});
    await plain.client.ready;
    expect(await plain.client.join(['secret:a', 'open'])).toEqual(['open']);
    expect(server.helper.roomKeys!.generation('secret:a')).toBeUndefined();
  });

  test('exclude works for sealed rooms (native publish skips the excluded member)', async () => {
    server = await startServer(await sealedServerOptions());
    const [a, b] = await Promise.all([1, 2].map(() => member(server!.url)));
    await a!.client.join('secret:e');
    await b!.client.join('secret:e');
    server.helper.sendToRoom({
      room: 'secret:e',
      event: 'note',
      data: { n: 1, text: 'e' },
      exclude: [a!.info.id],
    });
    await eventually(() => b!.received.length === 1, 3_000, 'b got it');
    await Bun.sleep(50);
    expect(a!.received).toEqual([]);
  });

  test('frames of a generation whose key never came are reported ROOM_KEY_MISSING (bounded wait)', async () => {
    server = await startServer(await sealedServerOptions());
    // A hook that drops every key: the frames wait, then overflow the (tiny) pending bound.
    const inner = roomKeys({ maxPending: 2 });
    const m = await member(server.url, (frame, decrypted, report, accept) =>
      frame.event === 'ws:room-key' ? Promise.resolve() : inner(frame, decrypted, report, accept),
    );
    await m.client.join('secret:k');
    for (let n = 0; n < 4; n++)
      server.helper.sendToRoom({ room: 'secret:k', event: 'note', data: { n, text: 'k' } });
    await eventually(() => m.errors.length >= 2, 3_000, 'missing key reports');
    expect(errorCodes(m.errors)).toEqual(['ROOM_KEY_MISSING', 'ROOM_KEY_MISSING']);
    expect(m.received).toEqual([]);
  });

  test("a client's id room and the helper's own topics are never sealed, whatever rooms() answers", async () => {
    server = await startServer(await sealedServerOptions({ rooms: () => true }));
    const m = await member(server.url);
    // Direct sends from other instances travel through the client's id room.
    server.helper.sendToRoom({ room: m.info.id, event: 'note', data: { n: 1, text: 'direct' } });
    await m.client.join('anything');
    server.helper.sendToRoom({ room: 'anything', event: 'note', data: { n: 2, text: 'sealed' } });
    await eventually(() => m.received.length === 2, 3_000, 'direct and sealed');
    expect(m.received.map((note) => note.n)).toEqual([1, 2]);
    expect(sealedFrames(m.wire.received).map((f) => f.room)).toEqual(['anything']);
    expect(server.helper.roomKeys!.generation(m.info.id)).toBeUndefined();
  });

  test('misconfiguration is refused at construction', async () => {
    await expect(startServer({ roomKeys: { rooms: () => true } })).rejects.toThrow(
      /needs outboundTransformer/,
    );
    await expect(startServer(await sealedServerOptions({ rotateInterval: -1 }))).rejects.toThrow(
      /rotateInterval/,
    );
  });
});
