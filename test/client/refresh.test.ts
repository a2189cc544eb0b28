import { afterEach, describe, expect, test } from 'bun:test';
import type { AnyRecord } from '../../src/common/types.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, trackedClient, waitForState } from './support.ts';

/** Tokens look like `<user>:<expiresAt ms>`; one whose time has passed is refused (4003). */
const LIFETIME = 300;
const mint = (user: string) => `${user}:${Date.now() + LIFETIME}`;
function authenticateFn(data: AnyRecord) {
  const [user, at] = String(data.token ?? '').split(':');
  const expiresAt = Number(at);
  if (!user || !(expiresAt > Date.now())) return null;
  return { userId: user, expiresAt };
}

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

describe('SDK: expiring credentials', () => {
  test('connected info carries the expiry the auth function gave', async () => {
    server = await startServer({ authenticateFn });
    const token = mint('carol');
    const { client } = trackedClient(server.url, { auth: { token } });
    const info = await client.ready;
    expect(info.expiresAt).toBe(Number(token.split(':')[1]));
    expect(client.connection?.expiresAt).toBe(info.expiresAt);
  });

  test('an auth function answers the refresh in-band: one connection for several lifetimes, rooms kept', async () => {
    server = await startServer({
      authenticateFn,
      tokenRefreshLead: 150,
      validateRoomFn: ({ rooms }) => rooms,
    });
    let minted = 0;
    const { client, states } = trackedClient(server.url, {
      auth: () => {
        minted++;
        return { token: mint('alice') };
      },
    });
    await client.ready;
    await client.join('desk');
    const heard: unknown[] = [];
    client.on('memo', (data) => heard.push(data));

    await Bun.sleep(LIFETIME * 3);
    expect(minted).toBeGreaterThanOrEqual(3); // the first authenticate plus a refresh per lifetime
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected']); // never dropped
    server.helper.send({ destination: 'desk', payload: { topic: 'memo', data: 'after refreshes' } });
    await eventually(() => heard.length === 1, 2_000, 'the room message');
    expect(server.helper.getClients().size).toBe(1);
  });

  test('static expired credentials: closed with 4006 and not retried in a loop', async () => {
    server = await startServer({ authenticateFn, tokenRefreshLead: 150 });
    const { client } = trackedClient(server.url, { auth: { token: mint('bob') } });
    await client.ready;
    const change = await waitForState(client, 'disconnected', LIFETIME + 1_000);
    expect(change.close?.code).toBe(4006);
    await Bun.sleep(300); // with a 30 ms backoff a loop would have reconnected many times
    expect(client.state).toBe('disconnected');
    expect(server.helper.getClients().size).toBe(0);
  });
});
