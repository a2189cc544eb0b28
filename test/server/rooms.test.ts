import { describe, expect, test } from 'bun:test';
import { recordingLogger, serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const serve = serverPerTest();

describe('client join / leave', () => {
  test('without validateRoomFn every join is denied', async () => {
    const { url, helper } = await serve();
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['lobby'] } });
    expect((await client.next('join')).data).toEqual({ rooms: [] });
    expect(helper.getClientsByRoom({ room: 'lobby' })).toEqual([]);
    helper.sendToRoom({ room: 'lobby', event: 'leak', data: 1 });
    await client.fence();
    expect(client.all('leak')).toEqual([]);
  });

  test('validateRoomFn sees only valid names and grants a subset', async () => {
    const seen: unknown[] = [];
    const { url, helper } = await serve({
      validateRoomFn: (opts) => {
        seen.push(opts);
        return opts.rooms.filter((r) => r.startsWith('public-'));
      },
    });
    const client = await TestClient.authenticated(url, { token: 'ok', user: 'dan' });
    const tooLong = 'r'.repeat(257);
    const maxLen = 'r'.repeat(256);
    client.send({
      event: 'join',
      data: {
        rooms: [
          'public-a',
          'private-b',
          'ws:room:x',
          'ws:internal:broadcast',
          tooLong,
          '',
          7,
          null,
          'public-a',
          maxLen,
        ],
      },
    });
    const ack = await client.next('join');
    expect(seen).toEqual([{ clientId: client.id, userId: 'dan', rooms: ['public-a', 'private-b', maxLen] }]);
    expect(ack.data).toEqual({ rooms: ['public-a'] });
    expect(helper.getClientsByRoom({ room: 'public-a' }).map((c) => c.id)).toEqual([client.id]);
    helper.sendToRoom({ room: 'public-a', event: 'in-room', data: 1 });
    await client.next('in-room');
  });

  test('rooms validateRoomFn returns that were not requested are not granted', async () => {
    const { url, helper } = await serve({ validateRoomFn: () => ['admin', 'ws:internal:broadcast'] });
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['lobby'] } });
    expect((await client.next('join')).data).toEqual({ rooms: [] });
    expect(helper.getClientsByRoom({ room: 'admin' })).toEqual([]);
  });

  test('a throwing validateRoomFn denies the join and is logged', async () => {
    const logger = recordingLogger();
    const { url } = await serve({
      logger,
      validateRoomFn: () => {
        throw new Error('acl down');
      },
    });
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['lobby'] } });
    expect((await client.next('join')).data).toEqual({ rooms: [] });
    expect(logger.lines.some((l) => l.message.startsWith('validateRoomFn threw'))).toBe(true);
  });

  test.each([
    ['no data', undefined],
    ['rooms not an array', { rooms: 'lobby' }],
    ['data an array', ['lobby']],
  ])('join with %s gets an error', async (_name, data) => {
    const { url } = await serve({ validateRoomFn: ({ rooms }) => rooms });
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data });
    expect((await client.next('error')).data.message).toBe('join expects { rooms: string[] }');
    client.send({ event: 'leave', data });
    await client.until(() => client.all('error').length === 2, 'leave error');
    expect(client.all('error')[1]!.data.message).toBe('leave expects { rooms: string[] }');
  });

  test('more than 100 rooms in one request is refused whole', async () => {
    let called = false;
    const { url, helper } = await serve({
      validateRoomFn: ({ rooms }) => {
        called = true;
        return rooms;
      },
    });
    const client = await TestClient.authenticated(url);
    const rooms = Array.from({ length: 300 }, (_, i) => `room-${i}`);
    client.send({ event: 'join', data: { rooms } });
    expect((await client.next('error')).data.message).toBe('join accepts at most 100 rooms per request');
    expect(called).toBe(false);
    expect(helper.getStats().rooms).toBe(3); // own id room + the two defaults
    client.send({ event: 'join', data: { rooms: rooms.slice(0, 100) } });
    expect((await client.next('join')).data.rooms.length).toBe(100);
  });

  test('leave removes membership, answers with the rooms left, and keeps the own id room', async () => {
    const { url, helper } = await serve({ validateRoomFn: ({ rooms }) => rooms });
    const client = await TestClient.authenticated(url);
    client.send({ event: 'join', data: { rooms: ['a', 'b'] } });
    await client.next('join');
    client.send({ event: 'leave', data: { rooms: ['a', 'never-joined', client.id, 'ws-default'] } });
    expect((await client.next('leave')).data).toEqual({ rooms: ['a', 'ws-default'] });
    expect([...helper.getClients({ id: client.id })!.rooms].sort()).toEqual(
      [client.id, 'b', 'ws-notification'].sort(),
    );
    helper.sendToRoom({ room: 'a', event: 'left-room', data: 1 });
    helper.sendToRoom({ room: client.id, event: 'own-room', data: 1 });
    await client.next('own-room');
    expect(client.all('left-room')).toEqual([]);
  });
});

describe('programmatic rooms', () => {
  test('joinRoom / leaveRoom / getClientsByRoom', async () => {
    const { url, helper } = await serve();
    const one = await TestClient.authenticated(url);
    const two = await TestClient.authenticated(url);
    helper.joinRoom({ clientId: one.id, room: 'game' });
    helper.joinRoom({ clientId: two.id, room: 'game' });
    helper.joinRoom({ clientId: 'unknown', room: 'game' });
    expect(
      helper
        .getClientsByRoom({ room: 'game' })
        .map((c) => c.id)
        .sort(),
    ).toEqual([one.id, two.id].sort());
    helper.sendToRoom({ room: 'game', event: 'tick', data: 1 });
    await one.next('tick');
    await two.next('tick');
    helper.leaveRoom({ clientId: one.id, room: 'game' });
    expect(helper.getClientsByRoom({ room: 'game' }).map((c) => c.id)).toEqual([two.id]);
    helper.sendToRoom({ room: 'game', event: 'tock', data: 1 });
    await two.next('tock');
    await one.fence();
    expect(one.all('tock')).toEqual([]);
    helper.leaveRoom({ clientId: two.id, room: 'game' });
    expect(helper.getClientsByRoom({ room: 'game' })).toEqual([]);
  });

  test('invalid programmatic room names throw a clear error', async () => {
    const { url, helper } = await serve();
    const client = await TestClient.authenticated(url);
    expect(() => helper.joinRoom({ clientId: client.id, room: 'ws:internal:broadcast' })).toThrow(
      'Invalid room name',
    );
    expect(() => helper.joinRoom({ clientId: client.id, room: '' })).toThrow('Invalid room name');
    expect(() => helper.joinRoom({ clientId: client.id, room: 'x'.repeat(257) })).toThrow(
      'Invalid room name',
    );
  });
});
