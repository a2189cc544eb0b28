// helper.connections(): a client's or a user's connections described by every instance, over a
// real redis-server (two helpers on real Bun.serve servers, real WebSocket clients).
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { decodeInstanceMessage, INSPECT_MAX_CONNECTIONS } from '../../src/bus/commands.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { createHttpApi } from '../../src/http-api/index.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

let redis: RedisServer;
const servers: ITestServer[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.close();
  for (const server of servers.splice(0)) await server.stop();
});

async function serve(): Promise<ITestServer> {
  const server = await startServer({
    redis: { host: '127.0.0.1', port: redis.port },
    validateRoomFn: ({ rooms }) => rooms,
  });
  servers.push(server);
  return server;
}

async function connect(server: ITestServer, user: string, rooms: string[] = []): Promise<TestClient> {
  const client = await TestClient.authenticated(server.url, { token: 'ok', user });
  clients.push(client);
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms } });
    await client.next('join');
  }
  return client;
}

describe('connections() over the command bus', () => {
  test('a user connected to two instances: both connections, each named with its instance and rooms; a client by id; nothing for an unknown id', async () => {
    const [a, b] = [await serve(), await serve()];
    const onA = await connect(a, 'ada', ['lobby', 'ops']);
    const onB = await connect(b, 'ada', ['lobby']);
    await connect(b, 'grace');

    const found = await a.helper.connections({ userId: 'ada' });
    expect(found.complete).toBe(true);
    expect(found.instances).toBe(2);
    const byClient = new Map(found.connections.map((c) => [c.clientId, c]));
    expect([...byClient.keys()].sort()).toEqual([onA.id, onB.id].sort());
    const first = byClient.get(onA.id)!;
    expect(first.userId).toBe('ada');
    expect(first.rooms.filter((room) => room === 'lobby' || room === 'ops').sort()).toEqual(['lobby', 'ops']);
    expect(first.roomCount).toBe(first.rooms.length);
    expect(first.encrypted).toBe(false);
    expect(first.connectedAt).toBeLessThanOrEqual(Date.now());
    // What one instance says about a connection it holds, seen from the other.
    expect(byClient.get(onB.id)!.serverId).not.toBe(first.serverId);
    expect(Object.keys(first).sort()).toEqual(
      [
        'clientId',
        'connectedAt',
        'encrypted',
        'lastActivity',
        'roomCount',
        'rooms',
        'serverId',
        'userId',
      ].sort(),
    );

    const one = await b.helper.connections({ clientId: onA.id });
    expect(one.connections.map((c) => c.clientId)).toEqual([onA.id]);
    expect((await a.helper.connections({ userId: 'nobody' })).connections).toEqual([]);
    await expect(a.helper.connections({})).rejects.toThrow('exactly one of clientId or userId');
  });

  test('GET /connections of the HTTP API: answered through connections() when given, 501 NOT_AVAILABLE when not, 400 without exactly one id', async () => {
    const [a, b] = [await serve(), await serve()];
    const onA = await connect(a, 'ada');
    const onB = await connect(b, 'ada');
    const key = 'connections-test-key-0123';
    const redisConnection = new RedisHelper({
      name: 'api',
      host: '127.0.0.1',
      port: redis.port,
      autoConnect: false,
      logger: silentLogger,
    });
    const withLookup = createHttpApi({
      redisConnection,
      keys: [key],
      logger: silentLogger,
      connections: (target) => a.helper.connections(target),
    });
    const standalone = createHttpApi({ redisConnection, keys: [key], logger: silentLogger });
    await Promise.all([withLookup.start(), standalone.start()]);
    try {
      const get = async (api: typeof standalone, query: string) => {
        const response = await api.fetch(
          new Request(`http://api/connections${query}`, { headers: { authorization: `Bearer ${key}` } }),
        );
        return { status: response.status, body: (await response.json()) as any };
      };
      const found = await get(withLookup, '?userId=ada');
      expect(found.status).toBe(200);
      expect(found.body.complete).toBe(true);
      expect(found.body.connections.map((c: { clientId: string }) => c.clientId).sort()).toEqual(
        [onA.id, onB.id].sort(),
      );
      expect((await get(withLookup, `?clientId=${onB.id}`)).body.connections).toHaveLength(1);
      expect((await get(withLookup, '')).body.error.code).toBe('INVALID_REQUEST');
      expect((await get(withLookup, `?clientId=${onB.id}&userId=ada`)).status).toBe(400);
      const missing = await get(standalone, '?userId=ada');
      expect(missing.status).toBe(501);
      expect(missing.body.error.code).toBe('NOT_AVAILABLE');
    } finally {
      await Promise.all([withLookup.stop(), standalone.stop()]);
      await redisConnection.disconnect();
    }
  });

  test('an answer on the bus is checked: too many connections, or a malformed one, is dropped', () => {
    const entry = {
      clientId: 'c',
      serverId: 's',
      rooms: [],
      roomCount: 0,
      encrypted: false,
      connectedAt: 1,
      lastActivity: 1,
    };
    const message = (connections: unknown) =>
      JSON.stringify({ kind: 'connections', requestId: 'r', connections });
    expect(decodeInstanceMessage(message([entry]))).toEqual({
      kind: 'connections',
      requestId: 'r',
      connections: [entry],
    });
    expect(decodeInstanceMessage(message(Array(INSPECT_MAX_CONNECTIONS + 1).fill(entry)))).toBeUndefined();
    expect(decodeInstanceMessage(message([{ ...entry, rooms: Array(11).fill('x') }]))).toBeUndefined();
    expect(decodeInstanceMessage(message([{ ...entry, encrypted: 'no' }]))).toBeUndefined();
    expect(decodeInstanceMessage(message([{ ...entry, metadata: { secret: 1 } }]))).toEqual({
      kind: 'connections',
      requestId: 'r',
      connections: [entry], // unknown fields are not carried over
    });
  });
});
