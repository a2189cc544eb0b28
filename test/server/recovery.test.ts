import { describe, expect, test } from 'bun:test';
import type { IHistoryPolicy } from '../../src/index.ts';
import { recordingLogger, serverPerTest } from '../support/server.ts';
import { expectSilence, type IFrame, TestClient } from '../support/ws-client.ts';

const serve = serverPerTest();
const allowAll = ({ rooms }: { rooms: string[] }) => rooms;
/** Rooms named `h-*` keep history. */
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 50, ttl: 60_000 } : null;

async function joined(
  url: string,
  rooms: string[],
  since?: Record<string, unknown>,
): Promise<{ client: TestClient; reply: IFrame }> {
  const client = await TestClient.authenticated(url);
  client.send({ event: 'join', data: since ? { rooms, since } : { rooms }, id: 'j' });
  const reply = await client.next('join');
  return { client, reply };
}

type Positioned = IFrame & { room: string; offset: number; epoch: string };
const offsetsOf = (client: TestClient, event: string) =>
  (client.all(event) as Positioned[]).map((f) => f.offset);

describe('single-instance history', () => {
  test('publications of a history room carry room, offset (from 1, +1 each) and epoch; others are unchanged', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const { client, reply } = await joined(url, ['h-a', 'plain']);
    expect(reply.data.rooms).toEqual(['h-a', 'plain']);
    // Never published: an empty position; the read created nothing, the first publication sets the epoch.
    expect(reply.data.positions['h-a']).toEqual({ offset: 0, epoch: expect.stringMatching(/^~/) });
    expect(reply.data.positions.plain).toBeUndefined();
    expect(reply.data.recovered).toBeUndefined();
    for (let i = 1; i <= 3; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: { i } } });
    helper.send({ destination: 'plain', payload: { topic: 'plain-msg', data: { x: 1 } } });
    await client.until(() => client.all('msg').length === 3 && client.all('plain-msg').length === 1);
    const epoch = (await helper.history({ room: 'h-a', limit: 0 })).epoch;
    expect(epoch).not.toMatch(/^~/);
    const frames = client.raw.filter((r) => r.includes('"msg"'));
    expect(frames[0]).toBe(
      `{"event":"msg","data":{"i":1},"room":"h-a","offset":1,"epoch":${JSON.stringify(epoch)}}`,
    );
    expect(offsetsOf(client, 'msg')).toEqual([1, 2, 3]);
    expect(client.raw.find((r) => r.includes('plain-msg'))).toBe('{"event":"plain-msg","data":{"x":1}}');
    client.close();
  });

  test("a join without any history room gets exactly today's reply", async () => {
    const { url } = await serve({ validateRoomFn: allowAll, historyFn });
    const { client } = await joined(url, ['plain']);
    expect(client.raw.find((r) => r.includes('"join"'))).toBe(
      '{"event":"join","data":{"rooms":["plain"]},"id":"j"}',
    );
    client.close();
  });

  test('a client dropped and reconnected recovers exactly what it missed, then live, from memory', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const first = await joined(url, ['h-a']);
    for (let i = 1; i <= 5; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    await first.client.until(() => first.client.all('msg').length === 5);
    const last = first.client.all('msg').at(-1) as Positioned;
    first.client.close();
    await first.client.closed;
    for (let i = 6; i <= 9; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });

    const { client, reply } = await joined(url, ['h-a'], {
      'h-a': { offset: last.offset, epoch: last.epoch },
    });
    expect(reply.data.recovered).toEqual({ 'h-a': true });
    expect(reply.data.positions['h-a']).toEqual({ offset: 9, epoch: last.epoch });
    helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 10 } });
    await client.until(() => client.all('msg').length === 5);
    expect(offsetsOf(client, 'msg')).toEqual([6, 7, 8, 9, 10]);
    expect(client.all('msg').map((f) => f.data)).toEqual([6, 7, 8, 9, 10]);
    // The reply comes before the missed publications.
    expect(client.frames.findIndex((f) => f.event === 'join')).toBeLessThan(
      client.frames.findIndex((f) => f.event === 'msg'),
    );
    client.close();
  });

  test('a position that left the window (size), a foreign epoch, an offset ahead: recovered false, live from the position', async () => {
    const { url, helper } = await serve({
      validateRoomFn: allowAll,
      historyFn: ({ room }) => (room.startsWith('h-') ? { size: 3, ttl: 60_000 } : null),
    });
    const probe = await joined(url, ['h-a']);
    for (let i = 1; i <= 10; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    const epoch = (await helper.history({ room: 'h-a', limit: 0 })).epoch;
    let top = 10;
    for (const since of [
      { offset: 2, epoch }, // 3..10 missed, only 8..10 retained
      { offset: 9, epoch: 'someone-else' },
      { offset: 20, epoch },
    ]) {
      const { client, reply } = await joined(url, ['h-a'], { 'h-a': since });
      expect(reply.data.recovered).toEqual({ 'h-a': false });
      expect(reply.data.positions['h-a']).toEqual({ offset: top++, epoch });
      await expectSilence(client, 'msg', 50);
      helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 'next' } });
      await client.until(() => client.all('msg').length === 1);
      client.close();
    }
    probe.client.close();
  });

  test('offline longer than ttl: recovered false', async () => {
    const { url, helper } = await serve({
      validateRoomFn: allowAll,
      historyFn: ({ room }) => (room.startsWith('h-') ? { size: 100, ttl: 100 } : null),
    });
    const first = await joined(url, ['h-a']);
    const epoch = first.reply.data.positions['h-a'].epoch;
    first.client.close();
    helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 1 } });
    await Bun.sleep(200);
    // The join's empty position stands for offset 0 of the stream created after it: offset 1 is gone.
    const { client, reply } = await joined(url, ['h-a'], { 'h-a': { offset: 0, epoch } });
    expect(reply.data.recovered).toEqual({ 'h-a': false });
    expect(reply.data.positions['h-a']).toEqual({
      offset: 1,
      epoch: (await helper.history({ room: 'h-a', limit: 0 })).epoch,
    });
    await expectSilence(client, 'msg', 50);
    client.close();
  });

  test('since for a room without history, a room not requested, a room refused', async () => {
    const { url } = await serve({
      validateRoomFn: ({ rooms }) => rooms.filter((r) => r !== 'h-secret'),
      historyFn,
    });
    const { client, reply } = await joined(url, ['plain', 'h-a', 'h-secret'], {
      plain: { offset: 3, epoch: 'e' },
      'h-other': { offset: 1, epoch: 'e' },
      'h-secret': { offset: 1, epoch: 'e' },
    });
    expect(reply.data.rooms).toEqual(['plain', 'h-a']);
    expect(reply.data.recovered).toEqual({ plain: false });
    expect(Object.keys(reply.data.positions)).toEqual(['h-a']);
    client.close();
  });

  test('since without historyFn: recovered false, nothing else changes', async () => {
    const { url } = await serve({ validateRoomFn: allowAll });
    const { client, reply } = await joined(url, ['a', 'b'], { a: { offset: 3, epoch: 'e' } });
    expect(reply.data).toEqual({ rooms: ['a', 'b'], recovered: { a: false } });
    client.close();
  });

  test('a wrong since shape is refused whole with INVALID_REQUEST, nothing joined', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const client = await TestClient.authenticated(url);
    const bad = [
      'x',
      [1],
      { 'h-a': 5 },
      { 'h-a': { offset: -1, epoch: 'e' } },
      { 'h-a': { offset: 1.5, epoch: 'e' } },
      { 'h-a': { offset: 2 ** 53, epoch: 'e' } },
      { 'h-a': { offset: '1', epoch: 'e' } },
      { 'h-a': { offset: 1, epoch: '' } },
      { 'h-a': { offset: 1, epoch: 'e'.repeat(65) } },
      { 'h-a': { offset: 1 } },
      null,
    ];
    for (const [i, since] of bad.entries()) {
      client.send({ event: 'join', data: { rooms: ['h-a'], since }, id: `b${i}` });
      const error = await client.next('error', () => true, 3_000, 0);
      void error;
    }
    await client.until(() => client.all('error').length === bad.length);
    expect(client.all('error').map((f) => f.data.code)).toEqual(bad.map(() => 'INVALID_REQUEST'));
    expect(client.all('error').map((f) => f.id)).toEqual(bad.map((_, i) => `b${i}`));
    expect(client.all('join')).toEqual([]);
    expect(helper.getClientsByRoom({ room: 'h-a' })).toEqual([]);
    client.close();
  });

  test('a join with since for a room the client is already in re-sends from since (gap repair)', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const { client } = await joined(url, ['h-a']);
    for (let i = 1; i <= 4; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    await client.until(() => client.all('msg').length === 4);
    const epoch = (client.all('msg')[0] as Positioned).epoch;
    client.send({
      event: 'join',
      data: { rooms: ['h-a'], since: { 'h-a': { offset: 2, epoch } } },
      id: 'again',
    });
    const again = await client.next('join', () => true, 3_000, client.frames.length);
    expect(again.id).toBe('again');
    expect(again.data).toEqual({
      rooms: ['h-a'],
      positions: { 'h-a': { offset: 4, epoch } },
      recovered: { 'h-a': true },
    });
    helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 5 } });
    await client.until(() => client.all('msg').length === 7);
    expect(offsetsOf(client, 'msg')).toEqual([1, 2, 3, 4, 3, 4, 5]);
    expect(helper.getClientsByRoom({ room: 'h-a' }).length).toBe(1);
    client.close();
  });

  test('a throwing historyFn: send() throws a clear error; a join gets the room without history (logged)', async () => {
    const logger = recordingLogger();
    const { url, helper } = await serve({
      logger,
      validateRoomFn: allowAll,
      historyFn: ({ room }) => {
        if (room === 'h-bad') return { size: 0, ttl: 1 };
        return null;
      },
    });
    expect(() => helper.send({ destination: 'h-bad', payload: { topic: 'x', data: 1 } })).toThrow(
      /invalid policy/,
    );
    const { client, reply } = await joined(url, ['h-bad'], { 'h-bad': { offset: 0, epoch: 'e' } });
    expect(reply.data).toEqual({ rooms: ['h-bad'], recovered: { 'h-bad': false } });
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('historyFn'))).toBe(true);
    client.close();
  });

  test('send() with exclude: refused for a history room; a plain room is delivered, historyFn asked once per send', async () => {
    const asked: string[] = [];
    const countingHistoryFn = (opts: { room: string }) => {
      asked.push(opts.room);
      return historyFn(opts);
    };
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn: countingHistoryFn });
    const { client } = await joined(url, ['plain']);
    asked.length = 0;
    expect(() =>
      helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 1 }, exclude: ['someone'] }),
    ).toThrow('exclude is not supported for rooms that keep history');
    helper.send({ destination: 'plain', payload: { topic: 'plain-msg', data: 2 }, exclude: ['someone'] });
    expect(asked).toEqual(['h-a', 'plain']);
    await client.until(() => client.all('plain-msg').length === 1);
    client.close();
  });

  test('sendToRoom in a history room: delivered without position and not stored', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const { client } = await joined(url, ['h-a']);
    helper.sendToRoom({ room: 'h-a', event: 'local', data: 1 });
    await client.next('local');
    expect(client.raw.find((r) => r.includes('"local"'))).toBe('{"event":"local","data":1}');
    expect((await helper.history({ room: 'h-a' })).publications).toEqual([]);
    client.close();
  });
});

describe('history() and removeHistory() in single-instance mode', () => {
  test('reads what is kept; removeHistory starts a new epoch at offset 1; without historyFn: HISTORY_UNAVAILABLE', async () => {
    const { helper } = await serve({ validateRoomFn: allowAll, historyFn });
    for (let i = 1; i <= 4; i++) helper.send({ destination: 'h-api', payload: { topic: 'm', data: { i } } });
    const all = await helper.history({ room: 'h-api' });
    expect(all.publications).toEqual([1, 2, 3, 4].map((i) => ({ offset: i, event: 'm', data: { i } })));
    const tail = await helper.history({
      room: 'h-api',
      since: { offset: 2, epoch: all.epoch },
      reverse: true,
    });
    expect(tail.publications.map((p) => p.offset)).toEqual([4, 3]);
    await helper.removeHistory({ room: 'h-api' });
    helper.send({ destination: 'h-api', payload: { topic: 'm', data: 'again' } });
    const fresh = await helper.history({ room: 'h-api' });
    expect(fresh.offset).toBe(1);
    expect(fresh.epoch).not.toBe(all.epoch);
    await expect(
      helper.history({ room: 'h-api', since: { offset: 4, epoch: all.epoch } }),
    ).rejects.toMatchObject({
      code: 'UNRECOVERABLE_POSITION',
    });
    await expect(helper.removeHistory({ room: 'ws:bad' })).rejects.toThrow(/Invalid room name/);
  });

  test('without historyFn', async () => {
    const { helper } = await serve({ validateRoomFn: allowAll });
    await expect(helper.history({ room: 'h-api' })).rejects.toMatchObject({ code: 'HISTORY_UNAVAILABLE' });
    await helper.removeHistory({ room: 'h-api' }); // nothing kept, nothing to do
  });
});

describe('encrypted clients in a history room', () => {
  test('the position is on the outer frame, outside what the transformer returns; recovered ones go through it too', async () => {
    const seen: Array<{ event: string; data: unknown }> = [];
    const { url, helper } = await serve({
      validateRoomFn: allowAll,
      historyFn,
      outboundTransformer: async ({ event, data }) => {
        seen.push({ event, data });
        return { event: 'encrypted', data: { sealed: `${event}:${JSON.stringify(data)}` } };
      },
    });
    const { client } = await joined(url, ['h-enc']);
    helper.enableClientEncryption({ clientId: client.id });
    helper.send({ destination: 'h-enc', payload: { topic: 'msg', data: { n: 1 } } });
    await client.next('encrypted');
    const epoch = (await helper.history({ room: 'h-enc', limit: 0 })).epoch;
    expect(client.raw.find((r) => r.includes('"encrypted"'))).toBe(
      `{"event":"encrypted","data":{"sealed":"msg:{\\"n\\":1}"},"room":"h-enc","offset":1,"epoch":${JSON.stringify(epoch)}}`,
    );
    expect(seen).toEqual([{ event: 'msg', data: { n: 1 } }]);
    client.close();

    helper.send({ destination: 'h-enc', payload: { topic: 'msg', data: { n: 2 } } });
    const again = await TestClient.authenticated(url);
    helper.enableClientEncryption({ clientId: again.id });
    again.send({ event: 'join', data: { rooms: ['h-enc'], since: { 'h-enc': { offset: 1, epoch } } } });
    // The join answer goes through the transformer too (nothing after the handshake is plain).
    const answer = await again.next('encrypted');
    expect(String((answer.data as { sealed: string }).sealed)).toStartWith('join:');
    expect(String((answer.data as { sealed: string }).sealed)).toContain('"recovered":{"h-enc":true}');
    const recovered = (await again.next(
      'encrypted',
      (data) => !String(data.sealed).startsWith('join:'),
    )) as Positioned;
    expect(recovered.offset).toBe(2);
    expect(recovered.data).toEqual({ sealed: 'msg:{"n":2}' });
    expect(seen.at(-1)).toEqual({ event: 'msg', data: { n: 2 } });
    again.close();
  });
});

describe('nothing is left behind', () => {
  test('a client that disconnects while its join is being validated or recovered leaves no capture, no membership', async () => {
    let release: (() => void) | undefined;
    const { url, helper } = await serve({
      validateRoomFn: ({ rooms }) =>
        new Promise<string[]>((resolve) => {
          release = () => resolve(rooms);
        }),
      historyFn,
    });
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['h-a'], since: { 'h-a': { offset: 0, epoch: 'e' } } } });
    await client.fence();
    client.close();
    await client.closed;
    await Bun.sleep(20);
    release?.();
    await Bun.sleep(20);
    expect(helper.getClientsByRoom({ room: 'h-a' })).toEqual([]);
    expect(helper.getStats().clients).toBe(0);
    expect(helper.getStats().rooms).toBe(0);
  });
});

describe('publications arriving while the history is read', () => {
  /**
   * Every history read of the server runs at once but its answer is held until `release()`:
   * publications sent meanwhile come after the read position (a narrow hook on the real store).
   */
  function holdReads(helper: unknown): { release: () => void; pending: () => number } {
    const store = (helper as { roomHistory: { store: { read: (...args: unknown[]) => Promise<unknown> } } })
      .roomHistory.store;
    const original = store.read.bind(store);
    const waiting: Array<() => void> = [];
    store.read = (...args: unknown[]) =>
      original(...args).then((page) => new Promise((resolve) => waiting.push(() => resolve(page))));
    return {
      pending: () => waiting.length,
      release: () => {
        store.read = original;
        for (const go of waiting.splice(0)) go();
      },
    };
  }

  test('are held and delivered after the missed ones, exactly once, in order', async () => {
    const { url, helper } = await serve({ validateRoomFn: allowAll, historyFn });
    const first = await joined(url, ['h-a']);
    for (let i = 1; i <= 3; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    const epoch = (await helper.history({ room: 'h-a', limit: 0 })).epoch;
    first.client.close();
    const hold = holdReads(helper);
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['h-a'], since: { 'h-a': { offset: 1, epoch } } } });
    await eventuallyTrue(() => hold.pending() === 1);
    for (let i = 4; i <= 8; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    expect(helper.getStats().recovering).toBe(1);
    hold.release();
    const reply = await client.next('join');
    expect(reply.data.recovered).toEqual({ 'h-a': true });
    expect(reply.data.positions['h-a']).toEqual({ offset: 3, epoch }); // read before 4..8 were sent
    helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 9 } });
    await client.until(() => client.all('msg').length === 8);
    await Bun.sleep(30);
    expect(offsetsOf(client, 'msg')).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(helper.getStats().recovering).toBe(0);
    client.close();
  });

  test('past 1 000 held: recovered false, live from the last one held, nothing of the past sent', async () => {
    const { url, helper } = await serve({
      validateRoomFn: allowAll,
      historyFn: ({ room }) => (room.startsWith('h-') ? { size: 5_000, ttl: 60_000 } : null),
    });
    const first = await joined(url, ['h-a']);
    const epoch = first.reply.data.positions['h-a'].epoch;
    first.client.close();
    const hold = holdReads(helper);
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['h-a'], since: { 'h-a': { offset: 0, epoch } } } });
    await eventuallyTrue(() => hold.pending() === 1);
    for (let i = 1; i <= 1_001; i++) helper.send({ destination: 'h-a', payload: { topic: 'msg', data: i } });
    hold.release();
    const reply = await client.next('join');
    expect(reply.data.recovered).toEqual({ 'h-a': false });
    expect(reply.data.positions['h-a']).toEqual({
      offset: 1_001,
      epoch: (await helper.history({ room: 'h-a', limit: 0 })).epoch,
    });
    helper.send({ destination: 'h-a', payload: { topic: 'msg', data: 'next' } });
    await client.next('msg');
    await Bun.sleep(30);
    expect(offsetsOf(client, 'msg')).toEqual([1_002]);
    client.close();
  });

  test('past 5 000 held in all of its recovering rooms: the rooms that would pass it get recovered false; the others recover', async () => {
    const { url, helper } = await serve({
      validateRoomFn: allowAll,
      historyFn: ({ room }) => (room.startsWith('h-') ? { size: 5_000, ttl: 60_000 } : null),
    });
    const rooms = Array.from({ length: 6 }, (_, i) => `h-${i}`);
    const first = await joined(url, rooms);
    const since = Object.fromEntries(
      rooms.map((room) => [room, { offset: 0, epoch: first.reply.data.positions[room].epoch }]),
    );
    first.client.close();
    const hold = holdReads(helper);
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms, since } });
    await eventuallyTrue(() => hold.pending() === rooms.length);
    // 900 per room (under the per-room 1 000), 5 400 in all: the last room's would pass 5 000.
    for (let i = 1; i <= 900; i++) {
      for (const room of rooms) helper.send({ destination: room, payload: { topic: 'msg', data: i } });
    }
    hold.release();
    const reply = await client.next('join');
    const recovered = reply.data.recovered as Record<string, boolean>;
    const notRecovered = rooms.filter((room) => recovered[room] === false);
    expect(notRecovered.length).toBeGreaterThan(0);
    expect(rooms.filter((room) => recovered[room] === true).length).toBe(rooms.length - notRecovered.length);
    // Every recovered room got all 900, in order; a room not recovered got none of its past.
    await client.until(() => client.all('msg').length === (rooms.length - notRecovered.length) * 900);
    await Bun.sleep(30);
    const frames = client.all('msg') as Positioned[];
    for (const room of rooms) {
      const offsets = frames.filter((f) => f.room === room).map((f) => f.offset);
      if (recovered[room]) expect(offsets).toEqual(Array.from({ length: 900 }, (_, i) => i + 1));
      else expect(offsets).toEqual([]);
    }
    client.close();
  }, 20_000);
});

async function eventuallyTrue(predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await Bun.sleep(5);
  }
}
