import { afterEach, describe, expect, test } from 'bun:test';
import { WebSocketLimits } from '../../src/common/constants.ts';
import { resolveLimits } from '../../src/server/inbound-limits.ts';
import { figure } from '../support/figures.ts';
import { eventually, type ITestServer, serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * The per-connection inbound limits against a real server: each limit answers
 * with its documented error code first and closes with 4005 if the client goes
 * on, while other clients keep being served.
 */

const server = serverPerTest();
let handled = 0;
const allowAll = { validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms };
const counting = {
  ...allowAll,
  messageHandler: () => {
    handled++;
  },
};
afterEach(() => {
  handled = 0;
});

/** A bystander in `room` that must keep receiving `send()`s while another client floods. */
async function bystanderReceives(srv: ITestServer, during: () => Promise<void>): Promise<void> {
  const bystander = await TestClient.authenticated(srv.url);
  bystander.send({ event: 'join', data: { rooms: ['watch'] } });
  await bystander.next('join');
  let sent = 0;
  const ticker = setInterval(() => {
    srv.helper.send({ destination: 'watch', payload: { topic: 'tick', data: sent++ } });
  }, 5);
  try {
    await during();
  } finally {
    clearInterval(ticker);
  }
  await bystander.until(() => bystander.all('tick').length === sent, 'every tick');
  expect(bystander.all('tick').map((f) => f.data)).toEqual([...Array(sent).keys()]);
  bystander.close();
}

describe('inbound limits', () => {
  test('defaults are documented constants, and each limit can be turned off', () => {
    const limits = resolveLimits(undefined);
    expect(limits.messagesPerSecond).toBe(WebSocketLimits.MESSAGES_PER_SECOND);
    expect(limits.messageBurst).toBe(WebSocketLimits.MESSAGES_PER_SECOND * 2);
    expect(limits.bytesBurst).toBe(WebSocketLimits.BYTES_PER_SECOND * 2);
    expect(limits.maxRoomsPerClient).toBe(WebSocketLimits.MAX_ROOMS_PER_CLIENT);
    expect(resolveLimits({ maxRoomsPerClient: false }).maxRoomsPerClient).toBe(Number.POSITIVE_INFINITY);
    expect(Object.values(resolveLimits(false)).every((v) => v === Number.POSITIVE_INFINITY)).toBe(true);
    expect(() => resolveLimits({ messagesPerSecond: -1 })).toThrow(
      '[WebSocketServerHelper] limits.messagesPerSecond must be a positive number or false, got -1',
    );
    expect(() => resolveLimits('fast' as never)).toThrow('limits must be an object or false');
  });

  test('frames before authentication: refused one by one, closed with 4005 at the tenth', async () => {
    const srv = await server(counting);
    await bystanderReceives(srv, async () => {
      const client = await TestClient.connect(srv.url);
      for (let i = 0; i < 2_000; i++) client.send({ event: 'chat', data: { i } });
      expect((await client.closedWithin()).code).toBe(4005);
      const errors = client.all('error');
      expect(errors.length).toBe(WebSocketLimits.MAX_UNAUTHENTICATED_FRAMES);
      expect(errors.slice(0, -1).every((e) => e.data.code === 'NOT_AUTHENTICATED' && !e.data.closeCode)).toBe(
        true,
      );
      expect(errors.at(-1)!.data).toMatchObject({ code: 'NOT_AUTHENTICATED', closeCode: 4005 });
      figure('limits.preauth-flood', `frames=2000 errors=${errors.length} close=4005`);
    });
    expect(handled).toBe(0);
    await eventually(() => srv.helper.getStats().clients === 0, 2_000, 'flooder forgotten');
  });

  test('a frame flood after authentication: the burst is handled, one RATE_LIMITED per episode, then 4005', async () => {
    const srv = await server(counting);
    await bystanderReceives(srv, async () => {
      const client = await TestClient.authenticated(srv.url);
      for (let i = 0; i < 2_000; i++) client.send({ event: 'chat', data: { i } });
      expect((await client.closedWithin()).code).toBe(4005);
      const errors = client.all('error').map((e) => e.data);
      // One answer per episode of refusals, not one per dropped frame: a frame the refilled bucket
      // accepts in the middle of the flood (a slow, loaded machine) starts a new episode.
      const told = { message: 'Rate limit exceeded; frame dropped', code: 'RATE_LIMITED' };
      expect(errors.at(-1)).toEqual({ ...told, closeCode: 4005 });
      expect(errors.slice(0, -1).length).toBeGreaterThanOrEqual(1);
      expect(errors.slice(0, -1).every((e) => Bun.deepEquals(e, told))).toBe(true);
      expect(errors.length).toBeLessThanOrEqual(
        2 + Math.max(0, handled - WebSocketLimits.MESSAGES_PER_SECOND * 2),
      );
      figure('limits.frame-flood', `frames=2000 handled=${handled} errors=${errors.length} close=4005`);
    });
    // The burst (200, one of it spent on `authenticate`) plus what refilled while the flood arrived.
    expect(handled).toBeGreaterThanOrEqual(WebSocketLimits.MESSAGES_PER_SECOND * 2 - 1);
    expect(handled).toBeLessThan(WebSocketLimits.MESSAGES_PER_SECOND * 2 + 50);
  });

  test('a client that slows down after a refusal is served again and stays connected', async () => {
    const srv = await server({ ...counting, limits: { messagesPerSecond: 20, messageBurst: 5 } });
    const client = await TestClient.authenticated(srv.url);
    for (let i = 0; i < 12; i++) client.send({ event: 'chat', data: i });
    await client.next('error', (d) => d.code === 'RATE_LIMITED');
    await eventually(() => handled >= 4, 2_000, 'the burst (5, one spent on authenticate) handled');
    await Bun.sleep(300); // 20/s refills about 6 tokens
    const before = handled;
    for (let i = 0; i < 3; i++) client.send({ event: 'chat', data: `later-${i}` });
    await eventually(() => handled === before + 3, 2_000, 'served again');
    expect(client.all('error').length).toBe(1); // one answer per episode, not one per dropped frame
    expect(client.closeInfo).toBeUndefined();
    client.close();
  });

  test('bytes per second: frames past the byte budget are refused', async () => {
    const srv = await server({ ...counting, limits: { bytesPerSecond: 1_000, bytesBurst: 2_000 } });
    const client = await TestClient.authenticated(srv.url);
    const padding = 'x'.repeat(900);
    for (let i = 0; i < 3; i++) client.send({ event: 'chat', data: padding });
    const error = await client.next('error');
    expect(error.data.code).toBe('RATE_LIMITED');
    await Bun.sleep(50);
    expect(handled).toBe(2);
    client.close();
  });

  test('rooms per client: a join past the cap is refused whole with ROOM_LIMIT and its id', async () => {
    const srv = await server({ ...allowAll, limits: { maxRoomsPerClient: 5 } });
    const client = await TestClient.authenticated(srv.url); // already in the 2 default rooms
    client.send({ event: 'join', data: { rooms: ['a', 'b', 'c'] }, id: 'j1' });
    expect((await client.next('join')).data).toEqual({ rooms: ['a', 'b', 'c'] });
    client.send({ event: 'join', data: { rooms: ['a', 'd'] }, id: 'j2' });
    const refused = await client.next('error');
    expect(refused.id).toBe('j2');
    expect(refused.data.code).toBe('ROOM_LIMIT');
    expect(srv.helper.getClientsByRoom({ room: 'd' })).toEqual([]);
    // Rooms it already has do not count twice.
    client.send({ event: 'join', data: { rooms: ['a', 'b'] }, id: 'j3' });
    expect((await client.next('join', () => true, 3_000, client.frames.length - 1)).id).toBe('j3');
    // Server-side joins are not limited: the application is trusted.
    srv.helper.joinRoom({ clientId: client.id, room: 'granted-by-app' });
    expect(client.closeInfo).toBeUndefined();
    client.close();
  });

  test('the room-flood attack: 2 000 joins of 100 names end with at most 500 rooms and a 4005 close', async () => {
    const srv = await server(allowAll);
    const roomsBefore = srv.helper.getStats().rooms;
    let peak = 0;
    await bystanderReceives(srv, async () => {
      const client = await TestClient.authenticated(srv.url);
      for (let r = 0; r < 2_000; r++) {
        client.send({ event: 'join', data: { rooms: Array.from({ length: 100 }, (_, i) => `p-${r}-${i}`) } });
      }
      const watcher = setInterval(() => {
        const c = srv.helper.getClients({ id: client.id });
        if (c) peak = Math.max(peak, c.rooms.size);
      }, 1);
      try {
        expect((await client.closedWithin(10_000)).code).toBe(4005);
      } finally {
        clearInterval(watcher);
      }
      figure('limits.room-flood', `joins=2000x100 peakRooms=${peak} close=4005`);
    });
    // Id room + default rooms + at most 500 requested ones... the cap counts all but the id room.
    expect(peak).toBeLessThanOrEqual(WebSocketLimits.MAX_ROOMS_PER_CLIENT + 1);
    await eventually(() => srv.helper.getStats().rooms <= roomsBefore, 2_000, 'rooms freed');
  });

  test('pending requests: joins beyond maxPendingRequests are refused with TOO_MANY_PENDING', async () => {
    const release: Array<() => void> = [];
    const srv = await server({
      limits: { maxPendingRequests: 3 },
      validateRoomFn: ({ rooms }) =>
        new Promise<string[]>((resolve) => {
          release.push(() => resolve(rooms));
        }),
    });
    const client = await TestClient.authenticated(srv.url);
    for (let i = 0; i < 5; i++) client.send({ event: 'join', data: { rooms: [`r${i}`] }, id: `j${i}` });
    await client.until(() => client.all('error').length === 2, 'two refusals');
    expect(client.all('error').map((e) => [e.id, e.data.code])).toEqual([
      ['j3', 'TOO_MANY_PENDING'],
      ['j4', 'TOO_MANY_PENDING'],
    ]);
    expect(release.length).toBe(3);
    for (const go of release) go();
    await client.until(() => client.all('join').length === 3, 'three joins answered');
    // Capacity is back once they finished.
    client.send({ event: 'join', data: { rooms: ['again'] }, id: 'j5' });
    await eventually(() => release.length === 4, 2_000, 'a fourth join accepted');
    release[3]!();
    expect((await client.next('join', (d) => d.rooms[0] === 'again')).id).toBe('j5');
    client.close();
  });
});
