import { describe, expect, test } from 'bun:test';
import type { AnyRecord } from '../../src/common/types.ts';
import { readExpiry } from '../../src/server/token-refresh.ts';
import { eventually, serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/**
 * Expiring credentials against a real server: `authenticateFn` returns
 * `expiresAt`, the server asks for a refresh in-band before it passes, and the
 * connection either lives on with its rooms or is closed with 4006.
 */

const LIFETIME = 400;
let authCalls = 0;

/** `short:<user>` expires after LIFETIME ms; `forever:<user>` does not expire; anything else is refused. */
function authenticateFn(data: AnyRecord) {
  authCalls++;
  const [kind, user] = String(data.token ?? '').split(':');
  if (kind === 'short')
    return { userId: user, metadata: { token: data.token }, expiresAt: Date.now() + LIFETIME };
  if (kind === 'forever') return { userId: user, metadata: { token: data.token } };
  if (kind === 'stale') return { userId: user, expiresAt: Date.now() - 1 };
  if (kind === 'garbage') return { userId: user, expiresAt: 'tomorrow' as never };
  return null;
}

const server = serverPerTest();
const options = {
  authenticateFn,
  tokenRefreshLead: 200,
  validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
};

async function inRoom(url: string, token: string, room = 'news'): Promise<TestClient> {
  const client = await TestClient.authenticated(url, { token });
  client.send({ event: 'join', data: { rooms: [room] } });
  await client.next('join');
  return client;
}

describe('token expiry and in-band refresh', () => {
  test('asked before expiry; a good refresh keeps the connection, its rooms and moves the expiry', async () => {
    const srv = await server(options);
    const client = await inRoom(srv.url, 'short:alice');
    const connected = client.all('connected')[0]!.data;
    expect(typeof connected.expiresAt).toBe('number');

    const ask = await client.next('ws:refresh', () => true, LIFETIME);
    expect(ask.data.expiresAt).toBe(connected.expiresAt);
    expect(ask.id).toBeUndefined();
    client.send({ event: 'ws:refresh', data: { token: 'short:alice' }, id: 'r1' });
    const answer = await client.next('ws:refresh', (d) => d.expiresAt > connected.expiresAt);
    expect(answer.id).toBe('r1');

    // Still connected past the first expiry, still in its room, asked again before the new one.
    await Bun.sleep(connected.expiresAt - Date.now() + 50);
    expect(client.closeInfo).toBeUndefined();
    srv.helper.send({ destination: 'news', payload: { topic: 'headline', data: 'still here' } });
    expect((await client.next('headline')).data).toBe('still here');
    await client.next('ws:refresh', (d) => d.expiresAt === answer.data.expiresAt, LIFETIME);
    client.close();
  });

  test('no answer by expiresAt: TOKEN_EXPIRED and close 4006', async () => {
    const srv = await server(options);
    const client = await inRoom(srv.url, 'short:bob');
    const expiresAt = client.all('connected')[0]!.data.expiresAt as number;
    await client.next('ws:refresh', () => true, LIFETIME);
    const closed = await client.closedWithin(LIFETIME + 500);
    expect(closed.code).toBe(4006);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt - 5);
    expect(client.all('error').at(-1)!.data).toEqual({
      message: 'Credentials expired',
      code: 'TOKEN_EXPIRED',
      closeCode: 4006,
    });
    await eventually(() => srv.helper.getStats().clients === 0, 1_000, 'client forgotten');
  });

  test('refused credentials, or another user, close with 4006 at once', async () => {
    const srv = await server(options);
    const refused = await inRoom(srv.url, 'short:carol');
    refused.send({ event: 'ws:refresh', data: { token: 'nonsense' }, id: 'bad' });
    expect((await refused.closedWithin()).code).toBe(4006);
    expect(refused.all('error').at(-1)).toMatchObject({
      id: 'bad',
      data: { code: 'AUTH_FAILED', closeCode: 4006 },
    });

    const impostor = await inRoom(srv.url, 'short:dave');
    impostor.send({ event: 'ws:refresh', data: { token: 'short:mallory' } });
    expect((await impostor.closedWithin()).code).toBe(4006);
    expect(impostor.all('error').at(-1)!.data.message).toBe('Refresh credentials belong to another user');
  });

  test('credentials without expiry are never asked; a refresh offered anyway updates metadata', async () => {
    const srv = await server(options);
    const client = await inRoom(srv.url, 'forever:erin');
    expect(client.all('connected')[0]!.data).not.toHaveProperty('expiresAt');
    await Bun.sleep(LIFETIME);
    expect(client.all('ws:refresh')).toEqual([]);
    client.send({ event: 'ws:refresh', data: { token: 'forever:erin' }, id: 'x' });
    expect((await client.next('ws:refresh')).data).toEqual({});
    expect(srv.helper.getClients({ id: client.id })?.metadata).toEqual({ token: 'forever:erin' });
    // A bad shape is answered, nothing closes.
    client.send({ event: 'ws:refresh', data: 'token', id: 'y' });
    expect((await client.next('error')).data.code).toBe('INVALID_REQUEST');
    expect(client.closeInfo).toBeUndefined();
    client.close();
  });

  test('an expiry that is already past or malformed refuses the authentication (4003)', async () => {
    const srv = await server(options);
    for (const token of ['stale:frank', 'garbage:gina']) {
      const client = await TestClient.connect(srv.url);
      client.send({ event: 'authenticate', data: { token } });
      expect((await client.closedWithin()).code).toBe(4003);
    }
    expect(() => readExpiry('soon', 0)).toThrow('expiresAt must be a Date or epoch milliseconds');
    expect(readExpiry(new Date(5_000), 0)).toBe(5_000);
    expect(readExpiry(undefined, 0)).toBeUndefined();
  });

  test('a client that leaves with a pending expiry leaves no timer behind', async () => {
    const srv = await server(options);
    const before = authCalls;
    const clients = await Promise.all([1, 2, 3].map((i) => inRoom(srv.url, `short:h${i}`)));
    expect(authCalls - before).toBe(3);
    expect(srv.helper.getStats().expiryTimers).toBe(3);
    for (const c of clients) c.close();
    await eventually(() => srv.helper.getStats().clients === 0, 1_000, 'all gone');
    expect(srv.helper.getStats().expiryTimers).toBe(0);
  });
});
