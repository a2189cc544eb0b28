import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { silentLogger } from '../../src/common/logger.ts';
import { createHttpApi, type IHttpApi, type IHttpApiAction } from '../../src/http-api/index.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { expectSilence, TestClient } from '../support/ws-client.ts';

/**
 * The HTTP API against two real instances (Bun.serve + a helper each, fleet registry on) and a
 * real redis-server: every operation, and every refusal with its documented code.
 */

const KEY = 'test-key-0123456789abcdef';
const OTHER_KEY = 'other-key-0123456789abcdef';
const keys: string[] = [KEY];
const actions: IHttpApiAction[] = [];

let redis: RedisServer;
let a: ITestServer;
let b: ITestServer;
let api: IHttpApi;
let apiServer: ReturnType<typeof Bun.serve>;
let base: string;
let apiRedis: RedisHelper;

const instanceOptions = (identifier: string) => ({
  identifier,
  redis: { host: '127.0.0.1', port: redis.port },
  fleet: { interval: 100, ttl: 1_000, topRooms: 5 },
  validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms,
  presenceFn: ({ room }: { room: string }) => room.startsWith('p-'),
  presenceInfoFn: ({ userId }: { userId?: string }) => ({ name: `name-${userId}` }),
  historyFn: ({ room }: { room: string }) => (room.startsWith('h-') ? { size: 10, ttl: 60_000 } : null),
});

beforeAll(async () => {
  redis = await RedisServer.start();
  a = await startServer(instanceOptions('api-a'));
  b = await startServer(instanceOptions('api-b'));
  apiRedis = new RedisHelper({
    name: 'api',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  api = createHttpApi({
    redisConnection: apiRedis,
    keys: () => keys,
    historyFn: ({ room }) => (room.startsWith('h-') ? { size: 10, ttl: 60_000 } : null),
    maxBodyBytes: 4_096,
    maxBatch: 5,
    rate: { perSecond: 1_000, burst: 1_000 },
    onAction: (entry) => actions.push(entry),
    logger: silentLogger,
  });
  await api.start();
  apiServer = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: api.fetch });
  base = `http://127.0.0.1:${apiServer.port}`;
}, 20_000);

afterAll(async () => {
  apiServer?.stop(true);
  await api?.stop();
  await apiRedis?.disconnect();
  await a?.stop();
  await b?.stop();
  await redis?.stop();
}, 20_000);

async function call(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  key: string | null = KEY,
): Promise<{ status: number; json: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json(), headers: response.headers };
}

const post = (path: string, body: unknown, key?: string | null) => call('POST', path, body, key);
const get = (path: string, key?: string | null) => call('GET', path, undefined, key);

async function joined(server: ITestServer, user: string, rooms: string[]): Promise<TestClient> {
  const client = await TestClient.authenticated(server.url, { token: 'ok', user });
  if (rooms.length > 0) {
    client.send({ event: 'join', data: { rooms }, id: 'j' });
    await client.next('join');
  }
  return client;
}

function expectError(res: { status: number; json: any }, status: number, code: string): void {
  expect({ status: res.status, code: res.json?.error?.code }).toEqual({ status, code });
  expect(typeof res.json.error.message).toBe('string');
}

describe('authentication', () => {
  test('no key, a wrong key, a malformed header: 401 UNAUTHORIZED, nothing done', async () => {
    const client = await joined(a, 'auth-u', ['auth-room']);
    expectError(await get('/instances', null), 401, 'UNAUTHORIZED');
    expectError(await get('/instances', 'wrong-key-0123456789abcdef'), 401, 'UNAUTHORIZED');
    expectError(
      await post('/publish/room', { room: 'auth-room', event: 'x', data: 1 }, null),
      401,
      'UNAUTHORIZED',
    );
    const res = await fetch(`${base}/instances`, { headers: { authorization: `Basic ${KEY}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers.get('cache-control')).toBe('no-store');
    await expectSilence(client, 'x');
    client.close();
  });

  test('keys rotate without a restart: old and new side by side, then the new one alone', async () => {
    expectError(await get('/instances', OTHER_KEY), 401, 'UNAUTHORIZED');
    keys.push(OTHER_KEY);
    try {
      expect((await get('/instances', OTHER_KEY)).status).toBe(200);
      expect((await get('/instances', KEY)).status).toBe(200);
      keys.splice(0, 1);
      expectError(await get('/instances', KEY), 401, 'UNAUTHORIZED');
      expect((await get('/instances', OTHER_KEY)).status).toBe(200);
    } finally {
      keys.splice(0, keys.length, KEY);
    }
  });

  test('a static key list must hold usable keys', () => {
    const make = (k: string[]) => () =>
      createHttpApi({ redisConnection: apiRedis, keys: k, logger: silentLogger });
    expect(make([])).toThrow(/keys/);
    expect(make(['short'])).toThrow(/16/);
  });
});

describe('the fleet', () => {
  test('GET /instances lists both instances with their counts; GET /rooms/top merges their rooms', async () => {
    const clients = [
      await joined(a, 'f1', ['fleet-big', 'fleet-small']),
      await joined(a, 'f2', ['fleet-big']),
      await joined(b, 'f3', ['fleet-big']),
    ];
    let answer: any;
    const deadline = Date.now() + 3_000;
    for (;;) {
      answer = (await get('/instances')).json;
      const ours = answer.instances.filter((i: any) => i.identifier.startsWith('api-'));
      const counts = ours.map((i: any) => `${i.identifier}:${i.authenticated}`).sort();
      if (counts.join() === 'api-a:2,api-b:1' || Date.now() > deadline) break;
      await Bun.sleep(50);
    }
    const ours = answer.instances.filter((i: any) => i.identifier.startsWith('api-'));
    expect(ours.map((i: any) => [i.identifier, i.id, i.authenticated, i.users])).toEqual([
      ['api-a', a.helper.serverId, 2, 2],
      ['api-b', b.helper.serverId, 1, 1],
    ]);
    expect(answer.totals.instances).toBe(answer.instances.length);
    const top = (await get('/rooms/top?limit=3')).json;
    expect(top.rooms.find((r: any) => r.room === 'fleet-big')).toEqual({ room: 'fleet-big', members: 3 });
    expect(top.rooms.length).toBeLessThanOrEqual(3);
    expectError(await get('/rooms/top?limit=0'), 400, 'INVALID_REQUEST');
    expectError(await get('/rooms/top?limit=1000'), 400, 'INVALID_REQUEST');
    for (const client of clients) client.close();
  });
});

describe('publishing', () => {
  test('to a room on every instance, with exclude', async () => {
    const x = await joined(a, 'p1', ['news']);
    const y = await joined(b, 'p2', ['news']);
    const z = await joined(b, 'p3', ['news']);
    const res = await post('/publish/room', {
      room: 'news',
      event: 'headline',
      data: { n: 1 },
      exclude: [z.id],
    });
    expect(res).toMatchObject({ status: 200, json: { position: null } });
    expect((await x.next('headline')).data).toEqual({ n: 1 });
    expect((await y.next('headline')).data).toEqual({ n: 1 });
    await expectSilence(z, 'headline');
    expect(actions.at(-1)).toMatchObject({ op: 'publishRoom', target: { room: 'news' } });
    for (const c of [x, y, z]) c.close();
  });

  test('to a user (every connection, with exclude), to one client, to everyone', async () => {
    const u1 = await joined(a, 'pu', []);
    const u2 = await joined(b, 'pu', []);
    const u3 = await joined(b, 'pu', []);
    const other = await joined(a, 'pv', []);
    expect(
      (await post('/publish/user', { userId: 'pu', event: 'dm', data: 'hi', exclude: [u3.id] })).json,
    ).toEqual({
      done: true,
    });
    expect((await u1.next('dm')).data).toBe('hi');
    expect((await u2.next('dm')).data).toBe('hi');
    await expectSilence(u3, 'dm');
    await expectSilence(other, 'dm', 50);
    expect((await post('/publish/client', { clientId: u2.id, event: 'one', data: [1] })).status).toBe(200);
    expect((await u2.next('one')).data).toEqual([1]);
    await expectSilence(u1, 'one');
    expect((await post('/publish/broadcast', { event: 'all', data: null, exclude: [other.id] })).status).toBe(
      200,
    );
    for (const c of [u1, u2, u3]) expect((await c.next('all')).data).toBeNull();
    await expectSilence(other, 'all');
    for (const c of [u1, u2, u3, other]) c.close();
  });

  test('to a history room: positioned; history read with since, limit, reverse; removed', async () => {
    const client = await joined(a, 'h1', ['h-log']);
    const positions = [];
    for (let n = 1; n <= 3; n++) {
      const res = await post('/publish/room', { room: 'h-log', event: 'line', data: { n } });
      expect(res.status).toBe(200);
      positions.push(res.json.position);
    }
    expect(positions.map((p) => p.offset)).toEqual([1, 2, 3]);
    await client.until(() => client.all('line').length === 3);
    const all = await get('/history?room=h-log');
    expect(all.json.publications.map((p: any) => p.data.n)).toEqual([1, 2, 3]);
    expect(all.json).toMatchObject({ offset: 3, epoch: positions[0].epoch });
    const since = await get(`/history?room=h-log&sinceOffset=1&sinceEpoch=${positions[0].epoch}&limit=1`);
    expect(since.json.publications.map((p: any) => p.offset)).toEqual([2]);
    const reversed = await get('/history?room=h-log&reverse=true&limit=2');
    expect(reversed.json.publications.map((p: any) => p.offset)).toEqual([3, 2]);
    expectError(
      await get('/history?room=h-log&sinceOffset=1&sinceEpoch=other-epoch'),
      409,
      'UNRECOVERABLE_POSITION',
    );
    expectError(await get('/history?room=no-history'), 409, 'HISTORY_UNAVAILABLE');
    expectError(await get('/history?room=h-log&sinceOffset=1'), 400, 'INVALID_REQUEST');
    expect((await post('/history/remove', { room: 'h-log' })).json).toEqual({ done: true });
    const after = await get('/history?room=h-log');
    expect(after.json.publications).toEqual([]);
    expect(after.json.offset).toBe(0);
    client.close();
  });

  test('a message larger than maxEnvelopeBytes is refused with MESSAGE_TOO_LARGE', async () => {
    const small = createHttpApi({
      redisConnection: apiRedis,
      keys: [KEY],
      maxEnvelopeBytes: 1_024,
      logger: silentLogger,
    });
    await small.start();
    try {
      const res = await small.fetch(
        new Request('http://x/publish/broadcast', {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ event: 'big', data: 'x'.repeat(2_000) }),
        }),
      );
      expect(res.status).toBe(413);
      expect(((await res.json()) as any).error.code).toBe('MESSAGE_TOO_LARGE');
    } finally {
      await small.stop();
    }
  });
});

describe('presence', () => {
  test('members on every instance and their stats', async () => {
    const x = await joined(a, 'm1', ['p-lobby']);
    const y = await joined(b, 'm2', ['p-lobby']);
    const z = await joined(b, 'm2', ['p-lobby']);
    let res: any;
    for (let n = 0; n < 60 && res?.json?.total !== 3; n++) {
      res = await get('/presence?room=p-lobby');
      if (res.json.total !== 3) await Bun.sleep(50);
    }
    expect(res.json.total).toBe(3);
    expect(res.json.members.map((m: any) => m.clientId).sort()).toEqual([x.id, y.id, z.id].sort());
    expect(res.json.members.find((m: any) => m.clientId === x.id)).toEqual({
      clientId: x.id,
      userId: 'm1',
      info: { name: 'name-m1' },
    });
    const limited = await get('/presence?room=p-lobby&limit=1');
    expect({ total: limited.json.total, listed: limited.json.members.length }).toEqual({
      total: 3,
      listed: 1,
    });
    expect((await get('/presence/stats?room=p-lobby')).json).toEqual({
      room: 'p-lobby',
      clients: 3,
      users: 2,
    });
    expect((await get('/presence?room=nobody-here')).json).toEqual({
      room: 'nobody-here',
      total: 0,
      members: [],
    });
    expectError(await get('/presence?room=ws:reserved'), 400, 'INVALID_REQUEST');
    expectError(await get('/presence'), 400, 'INVALID_REQUEST');
    for (const c of [x, y, z]) c.close();
  });

  test("a room's members and stats asked for at once share one Redis read (as the admin page asks)", async () => {
    const x = await joined(a, 'share-1', ['p-share']);
    const y = await joined(b, 'share-2', ['p-share']);
    for (let n = 0; n < 60 && (await get('/presence/stats?room=p-share')).json.clients !== 2; n++) {
      await Bun.sleep(50);
    }
    const reads = () => {
      const info = Bun.spawnSync(['redis-cli', '-p', String(redis.port), 'INFO', 'commandstats']);
      return Number(/^cmdstat_hgetall:calls=(\d+)/m.exec(info.stdout.toString())?.[1] ?? 0);
    };
    const ask = (path: string) =>
      Promise.resolve(
        api.fetch(new Request(`http://api${path}`, { headers: { authorization: `Bearer ${KEY}` } })),
      ).then((response) => response.json() as Promise<any>);
    const before = reads();
    const pairs = 3;
    for (let n = 0; n < pairs; n++) {
      const [members, stats] = await Promise.all([
        ask('/presence?room=p-share&limit=1'),
        ask('/presence/stats?room=p-share'),
      ]);
      expect({ total: members.total, listed: members.members.length }).toEqual({ total: 2, listed: 1 });
      expect(members.members[0].clientId).toBe([x.id, y.id].sort()[0]);
      expect(stats).toEqual({ room: 'p-share', clients: 2, users: 2 });
    }
    // One read per pair (a sweep of another test's stopped instance may add one, never three).
    expect(reads() - before).toBeLessThan(2 * pairs);
    expect(reads() - before).toBeGreaterThanOrEqual(pairs);
    for (const c of [x, y]) c.close();
  });
});

describe('server commands', () => {
  test('disconnect a client, a user; join and leave rooms on the instance that holds them', async () => {
    const x = await joined(b, 'c1', []);
    const res = await post('/join', { clientId: x.id, rooms: ['joined-by-api'] });
    expect(res.status).toBe(200);
    expect(res.json.instances).toBeGreaterThanOrEqual(2);
    await eventually(() => b.helper.getClientsByRoom({ room: 'joined-by-api' }).length === 1);
    await post('/publish/room', { room: 'joined-by-api', event: 'welcome', data: 1 });
    await x.next('welcome');
    expect((await post('/leave', { clientId: x.id, rooms: ['joined-by-api'] })).status).toBe(200);
    await eventually(() => b.helper.getClientsByRoom({ room: 'joined-by-api' }).length === 0);
    const u1 = await joined(a, 'c2', []);
    const u2 = await joined(b, 'c2', []);
    expect((await post('/disconnect', { userId: 'c2', code: 4010, reason: 'kicked' })).status).toBe(200);
    expect(await u1.closedWithin()).toEqual({ code: 4010, reason: 'kicked' });
    expect(await u2.closedWithin()).toEqual({ code: 4010, reason: 'kicked' });
    expect((await post('/disconnect', { clientId: x.id, reconnect: false })).status).toBe(200);
    expect((await x.closedWithin()).code).toBe(4008);
    expectError(await post('/disconnect', { clientId: 'a', userId: 'b' }), 400, 'INVALID_REQUEST');
    expectError(await post('/disconnect', { clientId: 'a', code: 1006 }), 400, 'INVALID_REQUEST');
    expectError(await post('/join', { clientId: 'a', rooms: [] }), 400, 'INVALID_REQUEST');
    expect(actions.some((e) => e.op === 'disconnect' && e.target.userId === 'c2')).toBe(true);
  });
});

describe('batches and bounds', () => {
  test('a batch runs in order, each with its own result', async () => {
    const x = await joined(a, 'b1', ['batch-room']);
    const res = await post('/batch', {
      requests: [
        { op: 'publishRoom', body: { room: 'batch-room', event: 'first', data: 1 } },
        { op: 'publishClient', body: { clientId: x.id, event: 'second', data: 2 } },
        { op: 'removeHistory', body: { room: 'batch-room' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.results).toEqual([
      { ok: true, result: { position: null } },
      { ok: true, result: { done: true } },
      { ok: true, result: { done: true } },
    ]);
    await x.until(() => x.all('second').length === 1);
    expect(x.frames.filter((f) => f.event === 'first' || f.event === 'second').map((f) => f.event)).toEqual([
      'first',
      'second',
    ]);
    x.close();
  });

  test('batch limit, size limit, bad JSON, bad input, unknown routes', async () => {
    const item = { op: 'broadcast', body: { event: 'e', data: 1 } };
    expectError(await post('/batch', { requests: Array(6).fill(item) }), 400, 'BATCH_TOO_LARGE');
    expectError(await post('/batch', { requests: [] }), 400, 'INVALID_REQUEST');
    expectError(await post('/batch', { requests: [{ op: 'nope', body: {} }] }), 400, 'INVALID_REQUEST');
    expectError(
      await post('/publish/broadcast', { event: 'big', data: 'x'.repeat(5_000) }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expectError(await post('/publish/broadcast', '{"event": '), 400, 'INVALID_JSON');
    expectError(
      await post('/publish/room', { room: 'r', event: 'ws:close', data: 1 }),
      400,
      'INVALID_REQUEST',
    );
    expectError(await post('/publish/room', { room: 'r', event: 'e', surprise: 1 }), 400, 'INVALID_REQUEST');
    expectError(await post('/publish/room', { room: 'x'.repeat(300), event: 'e' }), 400, 'INVALID_REQUEST');
    expectError(await get('/nowhere'), 404, 'NOT_FOUND');
    expectError(await get('/publish/room'), 404, 'NOT_FOUND');
  });

  test('over the rate: 429 RATE_LIMITED with Retry-After; a batch takes one token per request', async () => {
    const limited = createHttpApi({
      redisConnection: apiRedis,
      keys: [KEY],
      rate: { perSecond: 1, burst: 3 },
      logger: silentLogger,
    });
    const req = (body?: unknown) =>
      limited.fetch(
        new Request(`http://x/${body ? 'batch' : 'instances'}`, {
          method: body ? 'POST' : 'GET',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: body ? JSON.stringify(body) : undefined,
        }),
      );
    // Not started: Redis is not connected, but the key and the rate are checked first.
    const item = { op: 'broadcast', body: { event: 'e', data: 1 } };
    // burst 3: the request's token and two more items pass, the fourth item is refused.
    const batch = await req({ requests: [item, item, item, item] });
    expect(batch.status).toBe(429);
    expect(batch.headers.get('retry-after')).toBe('1');
    expect(((await batch.json()) as any).error.code).toBe('RATE_LIMITED');
    const after = await req();
    expect(after.status).toBe(429);
  });

  test('a body that is not declared JSON is refused with INVALID_REQUEST', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const res = await fetch(`${base}/publish/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': type },
        body: JSON.stringify({ event: 'e', data: 1 }),
      });
      expectError({ status: res.status, json: await res.json() }, 400, 'INVALID_REQUEST');
    }
  });

  test('Redis killed: 503 REDIS_UNAVAILABLE on reads and writes; back once Redis is', async () => {
    const own = await RedisServer.start();
    const ownRedis = new RedisHelper({
      name: 'outage',
      host: '127.0.0.1',
      port: own.port,
      autoConnect: false,
      logger: silentLogger,
    });
    const outage = createHttpApi({ redisConnection: ownRedis, keys: [KEY], logger: silentLogger });
    const req = (path: string, body?: unknown) =>
      outage.fetch(
        new Request(`http://x${path}`, {
          method: body ? 'POST' : 'GET',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: body ? JSON.stringify(body) : undefined,
        }),
      );
    try {
      await outage.start();
      expect((await req('/instances')).status).toBe(200);
      await own.kill();
      for (const [path, body] of [
        ['/instances', undefined],
        ['/presence?room=r', undefined],
        ['/publish/room', { room: 'r', event: 'e', data: 1 }],
        ['/disconnect', { userId: 'u' }],
      ] as const) {
        const res = await req(path, body);
        expect(`${path}: ${res.status} ${((await res.json()) as any).error?.code}`).toBe(
          `${path}: 503 REDIS_UNAVAILABLE`,
        );
      }
      await own.restart();
      let status = 0;
      for (let n = 0; n < 100 && status !== 200; n++) {
        status = (await req('/instances')).status;
        if (status !== 200) await Bun.sleep(50);
      }
      expect(status).toBe(200);
    } finally {
      await outage.stop();
      await ownRedis.disconnect();
      await own.stop();
    }
  }, 20_000);

  test('before start (or with Redis away): 503 REDIS_UNAVAILABLE', async () => {
    const idle = createHttpApi({ redisConnection: apiRedis, keys: [KEY], logger: silentLogger });
    const res = await idle.fetch(
      new Request('http://x/instances', { headers: { authorization: `Bearer ${KEY}` } }),
    );
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error.code).toBe('REDIS_UNAVAILABLE');
  });
});

describe('the OpenAPI document', () => {
  test('is served without a key, validates, and lists exactly the routes the app serves', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const served = api.app.routes
      .filter((r) => r.method !== 'ALL' && r.path !== '/openapi.json')
      .map((r) => `${r.method} ${r.path}`)
      .sort();
    expect(documented).toEqual([...new Set(served)]);
    // Every documented route refuses without a key.
    for (const entry of documented) {
      const [method, path] = entry.split(' ') as [string, string];
      const refused = await fetch(`${base}${path}`, { method });
      expect(`${entry}: ${refused.status}`).toBe(`${entry}: 401`);
    }
    // Every error code a route documents is one of the API's codes.
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});

describe('a client that is not JavaScript', () => {
  test('python3 with only its standard library publishes, batches, reads presence and gets the error codes', async () => {
    const x = await joined(a, 'py', ['p-python']);
    const y = await joined(b, 'py2', ['p-python']);
    const proc = Bun.spawn(
      ['python3', `${import.meta.dir}/fixtures/api_client.py`, base, KEY, 'p-python', x.id],
      { stdout: 'pipe', stderr: 'pipe' },
    );
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const r = JSON.parse(out);
    expect(r.instances.status).toBe(200);
    expect(r.instances.body.instances.map((i: any) => i.id)).toEqual(
      expect.arrayContaining([a.helper.serverId, b.helper.serverId]),
    );
    expect(r.publish).toEqual({ status: 200, body: { position: null } });
    expect(r.toClient).toEqual({ status: 200, body: { done: true } });
    expect(r.batch.status).toBe(200);
    expect(r.batch.body.results.map((item: any) => item.ok)).toEqual([true, true]);
    expect(r.presence).toEqual({ status: 200, body: { room: 'p-python', clients: 2, users: 2 } });
    expect([r.noKey.status, r.noKey.body.error.code]).toEqual([401, 'UNAUTHORIZED']);
    expect([r.wrongKey.status, r.wrongKey.body.error.code]).toEqual([401, 'UNAUTHORIZED']);
    expect([r.badInput.status, r.badInput.body.error.code]).toEqual([400, 'INVALID_REQUEST']);
    // What Python published arrived, in order, on both instances.
    for (const client of [x, y]) {
      await client.until(() => client.all('from-python').length === 2);
      expect(client.all('from-python').map((f) => f.data.n)).toEqual([1, 2]);
    }
    expect((await x.next('direct')).data).toBe('only you');
    await expectSilence(y, 'direct');
    await eventually(() => a.helper.getClientsByRoom({ room: 'joined-from-python' }).length === 1);
    x.close();
    y.close();
  });
  test("docs/http-api.md's Python example runs as written", async () => {
    const doc = await Bun.file(`${import.meta.dir}/../../docs/http-api.md`).text();
    const block = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const client = await joined(b, 'doc-py', ['chat']);
    const dir = await mkdtemp(join(tmpdir(), 'roomcast-api-py-'));
    try {
      await Bun.write(join(dir, 'example.py'), block!);
      const proc = Bun.spawn(['python3', join(dir, 'example.py')], {
        env: { ...process.env, ROOMCAST_API: base, ROOMCAST_API_KEY: KEY },
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const [out, err, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      expect(out).toMatch(/^\d+ connections on \d+ instances\n$/);
      expect((await client.next('message')).data).toEqual({ text: 'hello from Python' });
    } finally {
      await rm(dir, { recursive: true, force: true });
      client.close();
    }
  });
});

describe('standalone on Node', () => {
  test('bundled for Node and run with `node`: publishes to a Bun instance, lists the fleet, bounds the body', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'roomcast-api-node-'));
    const bundle = join(dir, 'standalone.mjs');
    const build = Bun.spawn(
      [
        process.execPath,
        'build',
        `${import.meta.dir}/fixtures/node-standalone.ts`,
        '--target=node',
        '--outfile',
        bundle,
      ],
      { stdout: 'ignore', stderr: 'pipe' },
    );
    expect(await build.exited).toBe(0);
    const node = Bun.spawn(['node', bundle], {
      env: { ...process.env, REDIS_PORT: String(redis.port), API_KEY: KEY },
      stdout: 'pipe',
      stderr: 'inherit',
    });
    try {
      const reader = node.stdout.getReader();
      let line = '';
      const deadline = Date.now() + 15_000;
      while (!line.includes('\n') && Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)]);
        if (!chunk || chunk.done) break;
        line += new TextDecoder().decode(chunk.value);
      }
      const match = /^ready (\d+) on (\w+)/.exec(line);
      expect(match?.[2]).toBe('node');
      const nodeBase = `http://127.0.0.1:${match![1]}`;
      const client = await joined(a, 'n1', ['from-node']);
      const res = await fetch(`${nodeBase}/publish/room`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ room: 'from-node', event: 'hello', data: { runtime: 'node' } }),
      });
      expect(res.status).toBe(200);
      expect((await client.next('hello')).data).toEqual({ runtime: 'node' });
      const listed = (await (
        await fetch(`${nodeBase}/instances`, { headers: { authorization: `Bearer ${KEY}` } })
      ).json()) as any;
      expect(listed.instances.map((i: any) => i.id)).toContain(a.helper.serverId);
      const big = await fetch(`${nodeBase}/publish/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ event: 'big', data: 'x'.repeat(2_000) }),
      });
      expect([big.status, ((await big.json()) as any).error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect((await fetch(`${nodeBase}/instances`)).status).toBe(401);
      client.close();
    } finally {
      node.kill('SIGKILL');
      await node.exited;
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
