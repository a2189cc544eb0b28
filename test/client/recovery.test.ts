import { afterEach, describe, expect, test } from 'bun:test';
import type { IPublicationInfo, IRoomRecovery } from '../../src/client/index.ts';
import { type IScriptedServer, scriptedServer } from './scripted-server.ts';
import { closeAllClients, eventually, trackedClient, waitForState } from './support.ts';

/**
 * What the SDK does with positions, against a scripted server that sends
 * exactly the frames each case needs (duplicates, gaps, a new epoch), which a
 * correct server would not produce on demand. The same behaviour against the
 * real server is in history.test.ts and the fault tests.
 */

let server: IScriptedServer | undefined;
afterEach(() => {
  closeAllClients();
  server?.stop();
  server = undefined;
});

interface IGot {
  offsets: number[];
  infos: IPublicationInfo[];
  recoveries: IRoomRecovery[];
}

/** A client joined to room `a` at `{ offset: start, epoch }`, recording what it delivers. */
async function joinedClient(start = 0, epoch = 'E') {
  server = scriptedServer();
  const got: IGot = { offsets: [], infos: [], recoveries: [] };
  const tracked = trackedClient(server.url, { onRecovery: (r) => got.recoveries.push(r) });
  tracked.client.on('chat', (data, info) => {
    got.offsets.push((data as { offset: number }).offset);
    if (info) got.infos.push(info);
  });
  const joined = tracked.client.join('a');
  const join = await server.next('join');
  expect(join.data).toEqual({ rooms: ['a'] });
  server.answerJoin('a', { offset: start, epoch });
  expect(await joined).toEqual(['a']);
  return { ...tracked, got, server };
}

describe('positions', () => {
  test('a publication already delivered (same epoch, offset <= last) is dropped', async () => {
    const { client, got, server, errors } = await joinedClient(0);
    for (const offset of [1, 2, 2, 1, 3]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length >= 3, 2_000, 'three publications');
    await Bun.sleep(50);
    expect(got.offsets).toEqual([1, 2, 3]);
    expect(got.infos).toEqual([1, 2, 3].map((offset) => ({ room: 'a', offset, epoch: 'E' })));
    expect(client.position('a')).toEqual({ offset: 3, epoch: 'E' });
    expect(got.recoveries).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('the join position is where the room starts: an older publication is a duplicate', async () => {
    const { got, server } = await joinedClient(10);
    for (const offset of [9, 10, 11]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length >= 1, 2_000, 'one publication');
    await Bun.sleep(50);
    expect(got.offsets).toEqual([11]);
  });

  test('a gap is repaired: the publication past it is dropped and the room re-joined with since', async () => {
    const { client, got, server } = await joinedClient(0);
    for (const offset of [1, 2, 5, 6]) server.publish('a', offset, 'E');
    const repair = await server.next('join');
    expect(repair.data).toEqual({ rooms: ['a'], since: { a: { offset: 2, epoch: 'E' } } });
    // Only one repair while the first is unanswered, even though 6 is past the gap too.
    await Bun.sleep(50);
    expect(server.received.filter(({ frame }) => frame.event === 'join')).toHaveLength(2);
    expect(got.offsets).toEqual([1, 2]);

    server.answerJoin('a', { offset: 6, epoch: 'E' }, true);
    for (const offset of [3, 4, 5, 6, 7]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length === 7, 2_000, 'all seven');
    expect(got.offsets).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: true, recoveredCount: 4, position: { offset: 6, epoch: 'E' } },
    ]);
    expect(client.position('a')).toEqual({ offset: 7, epoch: 'E' });
    expect([...client.joinedRooms]).toEqual(['a']);
  });

  test('a gap that can no longer be filled is reported as not recovered and the room goes on live', async () => {
    const { got, server } = await joinedClient(0);
    for (const offset of [1, 9]) server.publish('a', offset, 'E');
    expect((await server.next('join')).data).toEqual({
      rooms: ['a'],
      since: { a: { offset: 1, epoch: 'E' } },
    });
    server.answerJoin('a', { offset: 9, epoch: 'E' }, false);
    server.publish('a', 10, 'E');
    await eventually(() => got.offsets.length === 2, 2_000, 'live again');
    expect(got.offsets).toEqual([1, 10]);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: false, recoveredCount: 0, position: { offset: 9, epoch: 'E' } },
    ]);
  });

  test('a live publication with a new epoch is delivered and reported as not recovered', async () => {
    const { client, got, server } = await joinedClient(0);
    server.publish('a', 1, 'E');
    server.publish('a', 2, 'E');
    server.publish('a', 1, 'F');
    server.publish('a', 2, 'F');
    await eventually(() => got.offsets.length === 4, 2_000, 'four publications');
    expect(got.infos.map(({ offset, epoch }) => `${epoch}${offset}`)).toEqual(['E1', 'E2', 'F1', 'F2']);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: false, recoveredCount: 0, position: { offset: 0, epoch: 'F' } },
    ]);
    expect(client.position('a')).toEqual({ offset: 2, epoch: 'F' });
  });

  test('a new epoch first seen past its offset 1: reported, then what it missed of the new epoch is repaired', async () => {
    const { got, server } = await joinedClient(0);
    server.publish('a', 1, 'E');
    server.publish('a', 3, 'F');
    const repair = await server.next('join');
    expect(repair.data).toEqual({ rooms: ['a'], since: { a: { offset: 0, epoch: 'F' } } });
    server.answerJoin('a', { offset: 3, epoch: 'F' }, true);
    for (const offset of [1, 2, 3, 4]) server.publish('a', offset, 'F');
    await eventually(() => got.offsets.length === 5, 2_000, 'five publications');
    expect(got.infos.map(({ offset, epoch }) => `${epoch}${offset}`)).toEqual(['E1', 'F1', 'F2', 'F3', 'F4']);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: false, recoveredCount: 0, position: { offset: 0, epoch: 'F' } },
      { room: 'a', recovered: true, recoveredCount: 3, position: { offset: 3, epoch: 'F' } },
    ]);
  });

  test('an empty position (a room never published to): its first stream continues it, nothing reported', async () => {
    const { client, got, server } = await joinedClient(0, '~g.1000');
    for (const offset of [1, 2]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length === 2, 2_000, 'two publications');
    expect(got.recoveries).toEqual([]);
    expect(client.position('a')).toEqual({ offset: 2, epoch: 'E' });
  });

  test('an empty position whose first stream is first seen past offset 1: repaired with the empty position', async () => {
    const { got, server } = await joinedClient(0, '~g.1000');
    server.publish('a', 3, 'E');
    const repair = await server.next('join');
    expect(repair.data).toEqual({ rooms: ['a'], since: { a: { offset: 0, epoch: '~g.1000' } } });
    server.answerJoin('a', { offset: 3, epoch: 'E' }, true);
    for (const offset of [1, 2, 3]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length === 3, 2_000, 'three publications');
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: true, recoveredCount: 3, position: { offset: 3, epoch: 'E' } },
    ]);
  });

  test('an encrypted frame is opened before its position is trusted: the outer position never decides alone', async () => {
    const { server, errors, got } = await joinedClient(5);
    const sealed = (offset: number) => ({
      event: 'encrypted',
      data: { iv: 'x', ct: 'y' },
      room: 'a',
      offset,
      epoch: 'E',
    });
    // Neither an old nor a new outer position gets a frame that does not open past decryption.
    server.push(sealed(4));
    server.push(sealed(6));
    await eventually(() => errors.length === 2, 2_000, 'decryption attempts');
    expect(errors.map((e) => e.code)).toEqual(['DECRYPT_FAILED', 'DECRYPT_FAILED']);
    expect(got.offsets).toEqual([]);
  });

  test('frames without a position, and rooms that keep no history, pass through untouched', async () => {
    const { got, server } = await joinedClient(0);
    server.push({ event: 'chat', data: { offset: 100 } });
    server.publish('elsewhere', 1, 'E');
    server.publish('elsewhere', 1, 'E');
    await eventually(() => got.offsets.length === 3, 2_000, 'three frames');
    expect(got.offsets).toEqual([100, 1, 1]);
  });

  test('leaving a room forgets its position', async () => {
    const { client, server } = await joinedClient(4);
    expect(client.position('a')).toEqual({ offset: 4, epoch: 'E' });
    const left = client.leave('a');
    await server.next('leave');
    server.push({ event: 'leave', data: { rooms: ['a'] } });
    expect(await left).toEqual(['a']);
    expect(client.position('a')).toBeUndefined();
  });
});

describe('recovery after a reconnect', () => {
  test('re-joins with since and reports how many missed publications were delivered', async () => {
    const { client, got, server } = await joinedClient(0);
    for (const offset of [1, 2, 3]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length === 3, 2_000, 'first three');

    const back = waitForState(client, 'reconnecting').then(() => waitForState(client, 'connected'));
    server.drop();
    await back;
    const rejoin = await server.next('join');
    expect(rejoin.data).toEqual({ rooms: ['a'], since: { a: { offset: 3, epoch: 'E' } } });
    server.answerJoin('a', { offset: 5, epoch: 'E' }, true);
    // The replay may overlap what the client has: the overlap is dropped.
    for (const offset of [3, 4, 5, 6]) server.publish('a', offset, 'E');
    await eventually(() => got.offsets.length === 6, 2_000, 'six publications');
    expect(got.offsets).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: true, recoveredCount: 2, position: { offset: 5, epoch: 'E' } },
    ]);
  });

  test('the recovery is reported after the last missed publication reached the listeners', async () => {
    const { client, got, server } = await joinedClient(0);
    const order: string[] = [];
    client.on('chat', (data) => order.push(`msg ${(data as { offset: number }).offset}`));
    client.onRecovery((r) => order.push(`recovered ${r.recoveredCount}`));
    server.drop();
    await server.next('join');
    server.answerJoin('a', { offset: 2, epoch: 'E' }, true);
    for (const offset of [1, 2]) server.publish('a', offset, 'E');
    await eventually(() => got.recoveries.length === 1, 2_000, 'recovery');
    expect(order).toEqual(['msg 1', 'msg 2', 'recovered 2']);
  });

  test('nothing missed: recovered with a count of 0 right at the join answer', async () => {
    const { got, server } = await joinedClient(7);
    server.drop();
    expect((await server.next('join')).data).toEqual({
      rooms: ['a'],
      since: { a: { offset: 7, epoch: 'E' } },
    });
    server.answerJoin('a', { offset: 7, epoch: 'E' }, true);
    await eventually(() => got.recoveries.length === 1, 2_000, 'recovery');
    expect(got.recoveries[0]).toEqual({
      room: 'a',
      recovered: true,
      recoveredCount: 0,
      position: { offset: 7, epoch: 'E' },
    });
  });

  test('not recovered (new epoch): reported at once, live from the new position', async () => {
    const { client, got, server } = await joinedClient(0);
    server.publish('a', 1, 'E');
    await eventually(() => got.offsets.length === 1, 2_000, 'first');
    server.drop();
    await server.next('join');
    server.answerJoin('a', { offset: 3, epoch: 'F' }, false);
    server.publish('a', 3, 'F'); // already part of the new position: a duplicate
    server.publish('a', 4, 'F');
    await eventually(() => got.offsets.length === 2, 2_000, 'live in the new epoch');
    expect(got.offsets).toEqual([1, 4]);
    expect(got.recoveries).toEqual([
      { room: 'a', recovered: false, recoveredCount: 0, position: { offset: 3, epoch: 'F' } },
    ]);
    expect(client.position('a')).toEqual({ offset: 4, epoch: 'F' });
  });

  test('a recovery listener that throws is reported and the others still run', async () => {
    const { client, server, errors, got } = await joinedClient(0);
    client.onRecovery(() => {
      throw new Error('boom');
    });
    server.drop();
    await server.next('join');
    server.answerJoin('a', { offset: 0, epoch: 'E' }, true);
    await eventually(() => got.recoveries.length === 1, 2_000, 'recovery');
    await eventually(() => errors.some((e) => e.code === 'LISTENER_FAILED'), 2_000, 'listener failure');
  });
});

describe('history() (ws:history)', () => {
  test('each request has its own id; answers may come in any order; a refusal carries the server code', async () => {
    const { client, server } = await joinedClient(0);
    const first = client.history('a', { since: { offset: 2, epoch: 'E' }, limit: 10 });
    const second = client.history('a', { reverse: true });
    const asked = [await server.next('ws:history'), await server.next('ws:history')];
    expect(asked.map(({ data }) => data)).toEqual([
      { room: 'a', since: { offset: 2, epoch: 'E' }, limit: 10 },
      { room: 'a', reverse: true },
    ]);
    const [one, two] = asked.map(({ id }) => id!) as [string, string];
    expect(one).not.toBe(two);
    const publications = [{ offset: 3, event: 'chat', data: { offset: 3 } }];
    server.push({ event: 'ws:history', data: { publications, offset: 3, epoch: 'E' }, id: two });
    server.push({ event: 'error', data: { message: 'moved on', code: 'UNRECOVERABLE_POSITION' }, id: one });
    expect(await second).toEqual({ publications, offset: 3, epoch: 'E' });
    const refusal = await first.catch((error) => error);
    expect(refusal).toMatchObject({ name: 'RoomcastClientError', code: 'SERVER_ERROR', message: 'moved on' });
    expect(refusal.serverCode).toBe('UNRECOVERABLE_POSITION');
  });

  test('at most 4 requests are in flight (the server refuses more); the others wait their turn', async () => {
    const { client, server } = await joinedClient(0);
    const answers = Array.from({ length: 6 }, () => client.history('a'));
    const asked = () =>
      server.received.filter(({ frame }) => frame.event === 'ws:history').map(({ frame }) => frame);
    await eventually(() => asked().length === 4, 2_000, 'four sent');
    await Bun.sleep(50);
    expect(asked()).toHaveLength(4);
    const answer = (id?: string) =>
      server.push({ event: 'ws:history', data: { publications: [], offset: 0, epoch: 'E' }, id });
    answer(asked()[0]!.id);
    await eventually(() => asked().length === 5, 2_000, 'the fifth after one answer');
    for (const frame of asked().slice(1)) answer(frame.id);
    await eventually(() => asked().length === 6, 2_000, 'the sixth');
    answer(asked()[5]!.id);
    expect(await Promise.all(answers)).toHaveLength(6);
  });

  test('arguments that cannot make a request reject with a TypeError and send nothing', async () => {
    const { client, server } = await joinedClient(0);
    for (const [room, options] of [
      [42, {}],
      ['a', 'options'],
      ['a', null],
    ] as const) {
      await expect(client.history(room as string, options as never)).rejects.toBeInstanceOf(TypeError);
    }
    await Bun.sleep(30);
    expect(server.received.some(({ frame }) => frame.event === 'ws:history')).toBe(false);
  });

  test('a request whose connection drops is sent again on the next one; close() rejects what is left', async () => {
    const { client, server } = await joinedClient(0);
    const pending = client.history('a');
    await server.next('ws:history');
    server.drop();
    const again = await server.next('ws:history');
    expect(server.connections).toBe(2);
    server.push({ event: 'ws:history', data: { publications: [], offset: 0, epoch: 'E' }, id: again.id });
    expect(await pending).toEqual({ publications: [], offset: 0, epoch: 'E' });

    const abandoned = client.history('a');
    await server.next('ws:history');
    client.close();
    await expect(abandoned).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.history('a')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('an unanswered request times out; a malformed answer rejects with BAD_FRAME', async () => {
    server = scriptedServer();
    const { client } = trackedClient(server.url, { requestTimeout: 80 });
    await client.ready;
    await expect(client.history('a')).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' });
    const malformed = client.history('a');
    await server.next('ws:history');
    const { id } = await server.next('ws:history');
    server.push({ event: 'ws:history', data: { publications: 'no', offset: 1, epoch: 'E' }, id });
    await expect(malformed).rejects.toMatchObject({ code: 'BAD_FRAME' });
  });
});

describe('recovery answers without a position', () => {
  test('a recovery the server could not read (no position in the answer) is not recovered; the room stays tracked', async () => {
    const { client, got, server } = await joinedClient(0);
    server.publish('a', 1, 'E');
    await eventually(() => got.offsets.length === 1, 2_000, 'first');
    server.drop();
    await server.next('join');
    server.push({ event: 'join', data: { rooms: ['a'], recovered: { a: false } } });
    await eventually(() => got.recoveries.length === 1, 2_000, 'recovery');
    expect(got.recoveries[0]).toEqual({
      room: 'a',
      recovered: false,
      recoveredCount: 0,
      position: { offset: 1, epoch: 'E' },
    });
    server.publish('a', 1, 'E'); // still a duplicate
    server.publish('a', 2, 'E');
    await eventually(() => got.offsets.length === 2, 2_000, 'second');
    await Bun.sleep(30);
    expect(got.offsets).toEqual([1, 2]);
    expect(client.position('a')).toEqual({ offset: 2, epoch: 'E' });
  });
});
