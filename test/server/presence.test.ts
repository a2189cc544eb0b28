import { afterEach, describe, expect, test } from 'bun:test';
import type { IPresenceEvent, RoomcastClientError } from '../../src/client/index.ts';
import { closeAllClients, eventually, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';

/** Presence in single-instance mode (the memory store), with real servers and SDK clients. */

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

async function member(user: string) {
  const tracked = trackedClient(server!.url, { auth: { token: 'ok', user } });
  const events: Array<[string, IPresenceEvent]> = [];
  tracked.client.on('ws:presence:join', (e) => events.push(['join', e]));
  tracked.client.on('ws:presence:leave', (e) => events.push(['leave', e]));
  const info = await tracked.client.ready;
  return { ...tracked, id: info.id, events };
}

describe('presence without Redis', () => {
  test('members, stats and join/leave events in memory; leaving the room ends its events', async () => {
    server = await startServer({
      validateRoomFn: ({ rooms }) => rooms,
      presenceFn: ({ room }) => room === 'p',
      presenceInfoFn: ({ userId }) => ({ label: `L-${userId}` }),
    });
    const ann = await member('ann');
    await ann.client.join('p');
    await ann.client.subscribePresence('p');
    const bob = await member('bob');
    await bob.client.join('p');
    await eventually(() => ann.events.length === 1, 2_000, 'bob announced');
    expect(ann.events[0]).toEqual([
      'join',
      { room: 'p', clientId: bob.id, userId: 'bob', info: { label: 'L-bob' } },
    ]);
    expect(await server.helper.presenceStats({ room: 'p' })).toEqual({ clients: 2, users: 2 });
    expect((await bob.client.presence('p')).members.map((m) => m.userId).sort()).toEqual(['ann', 'bob']);
    bob.client.close();
    await eventually(() => ann.events.length === 2, 2_000, 'bob gone');
    expect(ann.events[1]?.[0]).toBe('leave');
    await ann.client.leave('p');
    const carl = await member('carl');
    await carl.client.join('p');
    await Bun.sleep(100);
    expect(ann.events.length).toBe(2); // no longer in the room: no events
    expect(await server.helper.presence({ room: 'p' })).toEqual([
      { clientId: carl.id, userId: 'carl', info: { label: 'L-carl' } },
    ]);
    await expect(server.helper.presence({ room: 'other' })).rejects.toThrow('keeps no presence');
  });

  test('a server without presenceFn answers ws:presence with PRESENCE_UNAVAILABLE; helper.presence throws', async () => {
    server = await startServer({ validateRoomFn: ({ rooms }) => rooms });
    const ann = await member('ann');
    await ann.client.join('p');
    const error = (await ann.client.presence('p').catch((e) => e)) as RoomcastClientError;
    expect(error.serverCode).toBe('PRESENCE_UNAVAILABLE');
    await expect(server.helper.presence({ room: 'p' })).rejects.toThrow('needs the presenceFn option');
  });
});
