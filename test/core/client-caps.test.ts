// The component's caps across connections (clientCaps), with real sockets from one address
// (all loopback connections share 127.0.0.1).
import { afterEach, describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { parseScrape } from '../support/scrape.ts';
import { eventually } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { startApp, type TestApplication, withAuth } from './app-fixture.ts';

const apps: TestApplication[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const app of apps.splice(0)) await app.stop();
});

async function started(serverOptions: Record<string, unknown>): Promise<TestApplication> {
  const app = await startApp(
    withAuth({
      [WebSocketBindingKeys.SERVER_OPTIONS]: { defaultRooms: [], metrics: true, ...serverOptions },
      [WebSocketBindingKeys.VALIDATE_ROOM_HANDLER]: ({ rooms }: { rooms: string[] }) => rooms,
    }),
  );
  apps.push(app);
  return app;
}

async function connect(url: string, user = 'u1'): Promise<TestClient> {
  const client = await TestClient.authenticated(url, { token: 'ok', user });
  clients.push(client);
  return client;
}

async function join(client: TestClient, rooms: string[], id: string) {
  client.send({ event: 'join', data: { rooms }, id });
  await client.until(() => client.frames.some((f) => f.id === id), `answer ${id}`);
  return client.frames.find((f) => f.id === id)!;
}

describe('clientCaps (component)', () => {
  test('maxConnectionsPerAddress: past it upgrades get 429, a closed socket frees its place, metrics count it', async () => {
    const app = await started({ clientCaps: { maxConnectionsPerAddress: 5 } });
    const open = await Promise.all(Array.from({ length: 5 }, () => connect(app.wsUrl())));
    const refused = await Promise.allSettled(
      Array.from({ length: 10 }, () => TestClient.connect(app.wsUrl())),
    );
    expect(refused.every((r) => r.status === 'rejected')).toBe(true);
    expect(app.helper.getStats().clients).toBe(5);
    open[0]!.close();
    await open[0]!.closed;
    await eventually(() => app.helper.getStats().clients === 4, 2_000, 'one gone');
    await connect(app.wsUrl()); // its place is free again
    const scrape = parseScrape(await app.helper.getMetrics()!.metrics());
    expect(scrape.get('roomcast_upgrades_refused_total{reason=address}')).toBe(10);
  });

  test('maxConnectionsPerAddress: 100 simultaneous upgrades end with at most the cap open; the others get 429 or 4007', async () => {
    const app = await started({ clientCaps: { maxConnectionsPerAddress: 10 } });
    const attempts = await Promise.allSettled(
      Array.from({ length: 100 }, () => TestClient.connect(app.wsUrl())),
    );
    const sockets = attempts.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    clients.push(...sockets);
    await Bun.sleep(100);
    const alive = sockets.filter((s) => s.closeInfo === undefined);
    expect(alive.length).toBe(10);
    for (const s of sockets.filter((s) => s.closeInfo !== undefined)) expect(s.closeInfo!.code).toBe(4007);
  });

  test('maxRoomsPerAddress: 20 sockets of one address share the cap; ADDRESS_ROOM_LIMIT past it; leaving and closing give rooms back', async () => {
    const app = await started({ clientCaps: { maxRoomsPerAddress: 50 } });
    const sockets = await Promise.all(
      Array.from({ length: 20 }, (_, i) => connect(app.wsUrl(), `user-${i}`)),
    );
    const granted: number[] = [];
    for (const [i, socket] of sockets.entries()) {
      const answer = await join(socket, [`a-${i}-1`, `a-${i}-2`, `a-${i}-3`, `a-${i}-4`], `j${i}`);
      granted.push(answer.event === 'join' ? answer.data.rooms.length : 0);
      if (answer.event === 'error') expect(answer.data.code).toBe('ADDRESS_ROOM_LIMIT');
    }
    expect(granted.reduce((a, b) => a + b, 0)).toBe(48); // 12 joins of 4; the 13th would pass 50
    const total = () =>
      sockets.reduce((n, s) => n + (app.helper.getClients({ id: s.id })?.rooms.size ?? 1) - 1, 0);
    expect(total()).toBe(48);
    // Leaving frees rooms for any socket of the address; so does a disconnect.
    await join(sockets[0]!, [], 'noop');
    sockets[0]!.send({ event: 'leave', data: { rooms: ['a-0-1', 'a-0-2'] }, id: 'l' });
    await sockets[0]!.next('leave');
    expect((await join(sockets[19]!, ['b-1', 'b-2', 'b-3', 'b-4'], 'again')).event).toBe('join');
    sockets[1]!.close();
    await eventually(() => app.helper.getClients({ id: sockets[1]!.id }) === undefined, 2_000, 'closed');
    expect((await join(sockets[18]!, ['c-1', 'c-2', 'c-3', 'c-4'], 'again')).event).toBe('join');
    expect((await join(sockets[17]!, ['d-1'], 'over')).data.code).toBe('ADDRESS_ROOM_LIMIT');
    const scrape = parseScrape(await app.helper.getMetrics()!.metrics());
    expect(scrape.get('roomcast_inbound_refused_total{code=ADDRESS_ROOM_LIMIT}')).toBeGreaterThanOrEqual(9);
  });

  test('maxRoomsPerUser: one user across sockets is capped with USER_ROOM_LIMIT, another user is not', async () => {
    const app = await started({ clientCaps: { maxRoomsPerUser: 6 } });
    const alice = await Promise.all(Array.from({ length: 3 }, () => connect(app.wsUrl(), 'alice')));
    const bob = await connect(app.wsUrl(), 'bob');
    expect((await join(alice[0]!, ['1', '2', '3'], 'a0')).event).toBe('join');
    expect((await join(alice[1]!, ['4', '5', '6'], 'a1')).event).toBe('join');
    const over = await join(alice[2]!, ['7'], 'a2');
    expect([over.event, over.data.code]).toEqual(['error', 'USER_ROOM_LIMIT']);
    expect((await join(bob, ['1', '2', '3', '4', '5', '6'], 'b')).event).toBe('join');
    // Re-joining rooms it is in adds nothing and is not refused.
    expect((await join(alice[0]!, ['1', '2'], 'a0-again')).event).toBe('join');
  });

  test('off by default: 40 sockets of one address, each in 20 rooms', async () => {
    const app = await started({});
    const sockets = await Promise.all(Array.from({ length: 40 }, () => connect(app.wsUrl())));
    const answers = await Promise.all(
      sockets.map((s, i) =>
        join(
          s,
          Array.from({ length: 20 }, (_, r) => `r-${i}-${r}`),
          `j${i}`,
        ),
      ),
    );
    expect(answers.every((a) => a.event === 'join' && a.data.rooms.length === 20)).toBe(true);
  });

  test('bad clientCaps values fail start() with a message naming the field', async () => {
    await expect(started({ clientCaps: { maxRoomsPerUser: 0 } })).rejects.toThrow(
      'clientCaps.maxRoomsPerUser must be a positive integer or false, got 0',
    );
  });
});
