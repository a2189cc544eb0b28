import { afterEach, describe, expect, test } from 'bun:test';
import { MAX_ROOMS_PER_REQUEST } from '../../src/client/index.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, trackedClient, waitForState } from './support.ts';

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

const memberIds = (room: string) => server!.helper.getClientsByRoom({ room }).map((c) => c.id);

describe('rooms', () => {
  test('join resolves with the rooms the server granted; leave with the rooms left', async () => {
    server = await startServer({
      validateRoomFn: ({ rooms }) => rooms.filter((room) => room.startsWith('public-')),
    });
    const { client } = trackedClient(server.url);
    const { id } = await client.ready;

    expect(await client.join(['public-a', 'secret', 'public-b'])).toEqual(['public-a', 'public-b']);
    expect([...client.joinedRooms]).toEqual(['public-a', 'public-b']);
    expect(memberIds('public-a')).toEqual([id]);
    expect(memberIds('secret')).toEqual([]);

    expect(await client.leave('public-a')).toEqual(['public-a']);
    expect([...client.joinedRooms]).toEqual(['public-b']);
    expect(memberIds('public-a')).toEqual([]);
    // A single name works too, and nothing to do means no request at all.
    expect(await client.join('public-c')).toEqual(['public-c']);
    expect(await client.join([])).toEqual([]);
  });

  test('without validateRoomFn the server grants nothing', async () => {
    server = await startServer();
    const { client } = trackedClient(server.url);
    await client.ready;
    expect(await client.join(['anything'])).toEqual([]);
    expect(client.joinedRooms.size).toBe(0);
  });

  test(`more than ${MAX_ROOMS_PER_REQUEST} rooms are split into several requests`, async () => {
    const requestSizes: number[] = [];
    server = await startServer({
      validateRoomFn: ({ rooms }) => {
        requestSizes.push(rooms.length);
        return rooms;
      },
    });
    const { client, errors } = trackedClient(server.url);
    const { id } = await client.ready;
    const rooms = Array.from({ length: 250 }, (_, i) => `room-${i}`);
    expect(await client.join(rooms)).toEqual(rooms);
    expect(requestSizes).toEqual([100, 100, 50]);
    expect(memberIds('room-249')).toEqual([id]);
    expect(errors).toEqual([]);
  });

  test('concurrent joins get their own answers even when the server answers out of order', async () => {
    server = await startServer({
      // The first request is validated slowest: unordered answers would be mismatched.
      validateRoomFn: async ({ rooms }) => {
        await Bun.sleep(rooms[0] === 'slow' ? 150 : 1);
        return rooms;
      },
    });
    const { client } = trackedClient(server.url);
    await client.ready;
    const [slow, fast, left] = await Promise.all([
      client.join(['slow']),
      client.join(['fast']),
      client.leave(['slow']),
    ]);
    expect(slow).toEqual(['slow']);
    expect(fast).toEqual(['fast']);
    expect(left).toEqual(['slow']);
    expect([...client.joinedRooms]).toEqual(['fast']);
  });

  test('a join made before the connection waits for it', async () => {
    server = await startServer({ validateRoomFn: ({ rooms }) => rooms });
    const { client } = trackedClient(server.url, { autoConnect: false });
    const joined = client.join('early');
    await Bun.sleep(50);
    client.connect();
    expect(await joined).toEqual(['early']);
    expect(memberIds('early')).toEqual([client.connection!.id]);
  });

  test('a join in flight when the connection drops is sent again after reconnecting', async () => {
    let calls = 0;
    server = await startServer({
      validateRoomFn: async ({ rooms, clientId }) => {
        if (++calls === 1) {
          // Drop the connection while the first request is being validated.
          server!.helper.getClients({ id: clientId })?.socket.close(4002, 'drop');
          await Bun.sleep(50);
        }
        return rooms;
      },
    });
    const { client } = trackedClient(server.url);
    await client.ready;
    expect(await client.join('retry-me')).toEqual(['retry-me']);
    expect(calls).toBe(2);
    expect(memberIds('retry-me')).toEqual([client.connection!.id]);
  });

  test('rooms not granted again after a reconnect are reported as REJOIN_DENIED', async () => {
    let allowVip = true;
    server = await startServer({
      validateRoomFn: ({ rooms }) => rooms.filter((room) => room !== 'vip' || allowVip),
    });
    const { client, errors } = trackedClient(server.url);
    const { id } = await client.ready;
    await client.join(['vip', 'general']);

    allowVip = false;
    server.helper.getClients({ id })!.socket.close(4002, 'drop');
    await waitForState(client, 'reconnecting');
    await waitForState(client, 'connected');
    await eventually(() => errors.some((e) => e.code === 'REJOIN_DENIED'), 2_000, 'REJOIN_DENIED');
    expect(errors.find((e) => e.code === 'REJOIN_DENIED')?.details).toEqual({ rooms: ['vip'] });
    expect([...client.joinedRooms]).toEqual(['general']);
    expect(memberIds('general')).toEqual([client.connection!.id]);
  });

  test('pending joins reject when the client is closed; bad arguments reject at once', async () => {
    server = await startServer({ validateRoomFn: ({ rooms }) => rooms });
    const { client } = trackedClient(server.url, { autoConnect: false });
    const pending = client.join('never');
    client.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.join([42 as unknown as string])).rejects.toBeInstanceOf(TypeError);
  });

  test('an unanswered request times out after requestTimeout and the next one still works', async () => {
    let hang = true;
    server = await startServer({
      validateRoomFn: async ({ rooms }) => {
        if (hang) await Bun.sleep(400);
        return rooms;
      },
    });
    const { client } = trackedClient(server.url, { requestTimeout: 100 });
    await client.ready;
    await expect(client.join('slow')).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' });
    hang = false;
    await Bun.sleep(400); // let the late answer arrive; nobody is waiting for it any more
    expect(await client.join('quick')).toEqual(['quick']);
  });
});
