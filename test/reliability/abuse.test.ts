import { describe, expect, test } from 'bun:test';
import type { AnyRecord } from '../../src/common/types.ts';
import { parseScrape } from '../support/scrape.ts';
import { eventually, serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * Floods found against the per-connection limits (issue 17), each against a real server and real
 * sockets: concurrent `ws:refresh`, refusals interleaved with accepted frames, and close codes
 * chosen by the client as metric labels.
 */

const server = serverPerTest();
const allowAll = { validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms };

describe('ws:refresh', () => {
  test('150 concurrent refreshes from a connection without expiry: at most one authenticateFn call runs, the rest are answered TOO_MANY_PENDING', async () => {
    let inFlight = 0;
    let peak = 0;
    let refreshCalls = 0;
    const authenticateFn = async (data: AnyRecord) => {
      if (data.token === 'ok') return { userId: 'u1' }; // the connection itself: no expiry
      refreshCalls++;
      inFlight++;
      peak = Math.max(peak, inFlight);
      await Bun.sleep(200);
      inFlight--;
      return { userId: 'u1' };
    };
    const srv = await server({ authenticateFn, limits: { closeAfterRefusals: false } });
    const client = await TestClient.authenticated(srv.url);
    for (let i = 0; i < 150; i++) client.send({ event: 'ws:refresh', data: { token: 'again' }, id: `r${i}` });
    await client.until(
      () => client.all('ws:refresh').length + client.all('error').length === 150,
      'every answer',
    );
    expect(peak).toBe(1);
    expect(refreshCalls).toBe(client.all('ws:refresh').length);
    const errors = client.all('error');
    expect(errors.length).toBeGreaterThanOrEqual(149 - 1);
    expect(new Set(errors.map((e) => e.data.code))).toEqual(new Set(['TOO_MANY_PENDING']));
    // Every request answered once, under its own id.
    const ids = [...client.all('ws:refresh'), ...errors].map((f) => f.id).sort();
    expect(ids).toEqual(Array.from({ length: 150 }, (_, i) => `r${i}`).sort());
    // Once the refresh finished, another one is served.
    await eventually(() => inFlight === 0, 2_000, 'refresh done');
    client.send({ event: 'ws:refresh', data: { token: 'again' }, id: 'later' });
    expect((await client.next('ws:refresh', () => true, 2_000, client.frames.length)).id).toBe('later');
    client.close();
  });

  test('a refresh counts against maxPendingRequests like any request', async () => {
    const release: Array<() => void> = [];
    const srv = await server({
      limits: { maxPendingRequests: 2 },
      validateRoomFn: ({ rooms }) => new Promise<string[]>((resolve) => release.push(() => resolve(rooms))),
    });
    const client = await TestClient.authenticated(srv.url);
    client.send({ event: 'join', data: { rooms: ['a'] }, id: 'j1' });
    client.send({ event: 'join', data: { rooms: ['b'] }, id: 'j2' });
    await eventually(() => release.length === 2, 2_000, 'two joins pending');
    client.send({ event: 'ws:refresh', data: { token: 'ok' }, id: 'r' });
    const refused = await client.next('error');
    expect([refused.id, refused.data.code]).toEqual(['r', 'TOO_MANY_PENDING']);
    for (const go of release) go();
    await client.until(() => client.all('join').length === 2, 'joins answered');
    client.send({ event: 'ws:refresh', data: { token: 'ok' }, id: 'r2' });
    expect((await client.next('ws:refresh')).id).toBe('r2');
    client.close();
  });
});

describe('escalation of refusals', () => {
  test('refusals interleaved with accepted frames still close the connection with 4005', async () => {
    const srv = await server({
      ...allowAll,
      defaultRooms: [],
      limits: { maxRoomsPerClient: 1, closeAfterRefusals: 20 },
    });
    const client = await TestClient.authenticated(srv.url);
    client.send({ event: 'join', data: { rooms: ['one'] }, id: 'first' });
    await client.next('join');
    for (let i = 0; i < 40; i++) {
      client.send({ event: 'join', data: { rooms: [`more-${i}`] }, id: `j${i}` }); // ROOM_LIMIT
      client.send({ event: 'chat', data: i }); // accepted in between
    }
    const closed = await client.closedWithin();
    expect(closed.code).toBe(4005);
    const errors = client.all('error');
    // 20 refusals in a few milliseconds (the bucket drains a hair meanwhile: at most one more).
    expect(errors.length).toBeGreaterThanOrEqual(20);
    expect(errors.length).toBeLessThanOrEqual(21);
    expect(errors.at(-1)!.data).toMatchObject({ code: 'ROOM_LIMIT', closeCode: 4005 });
  });

  test('a client that meets a limit now and then, slower than the bucket drains, is never closed', async () => {
    const srv = await server({
      ...allowAll,
      defaultRooms: [],
      limits: { maxRoomsPerClient: 1, closeAfterRefusals: 4, refusalWindow: 1_000 },
    });
    const client = await TestClient.authenticated(srv.url);
    client.send({ event: 'join', data: { rooms: ['one'] }, id: 'first' });
    await client.next('join');
    // 12 refusals, one every 300 ms: the level drains 1.2 between two, so it never reaches 4.
    for (let i = 0; i < 12; i++) {
      client.send({ event: 'join', data: { rooms: [`more-${i}`] }, id: `j${i}` });
      await client.until(() => client.all('error').length === i + 1, `refusal ${i}`);
      await Bun.sleep(300);
    }
    expect(client.closeInfo).toBeUndefined();
    expect(
      client.all('error').every((e) => e.data.code === 'ROOM_LIMIT' && e.data.closeCode === undefined),
    ).toBe(true);
    // The same client refused faster than that is closed.
    for (let i = 0; i < 4; i++) client.send({ event: 'join', data: { rooms: [`fast-${i}`] }, id: `f${i}` });
    expect((await client.closedWithin()).code).toBe(4005);
  });
});

describe('close codes as metric labels', () => {
  test('codes a client chooses are counted as other; documented codes as themselves', async () => {
    const srv = await server({ metrics: true });
    for (let code = 3000; code < 3040; code++) {
      const client = await TestClient.connect(srv.url); // not even authenticated
      client.ws.close(code, 'mine');
      await client.closed;
    }
    const normal = await TestClient.authenticated(srv.url);
    normal.ws.close(1000);
    await normal.closed;
    await eventually(() => srv.helper.getStats().clients === 0, 2_000, 'all gone');
    const scrape = parseScrape(await srv.helper.getMetrics()!.metrics());
    const labels = [...scrape.keys()]
      .filter((key) => key.startsWith('roomcast_connections_closed_total{'))
      .map((key) => key.slice('roomcast_connections_closed_total{'.length, -1));
    expect(labels.sort()).toEqual(['code=1000', 'code=other']);
    expect(scrape.get('roomcast_connections_closed_total{code=other}')).toBe(40);
  });
});
