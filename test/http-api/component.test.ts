import { afterAll, beforeAll, expect, test } from 'bun:test';
import { silentLogger } from '../../src/common/logger.ts';
import { BaseApplication, WebSocketBindingKeys, WebSocketComponent } from '../../src/core/index.ts';
import {
  HttpApiBindingKeys,
  HttpApiComponent,
  type IHttpApiComponentOptions,
} from '../../src/http-api/index.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { RedisServer } from '../support/redis-server.ts';
import { acceptOkToken } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const KEY = 'component-key-0123456789';

class App extends BaseApplication {
  constructor(private readonly redisPort: number) {
    super({ name: 'api-app', port: 0, host: '127.0.0.1', handleSignals: false, logger: silentLogger });
  }
  override preConfigure(): void {
    this.bind({ key: WebSocketBindingKeys.AUTHENTICATE_HANDLER }).toValue(acceptOkToken);
    this.bind({ key: WebSocketBindingKeys.VALIDATE_ROOM_HANDLER }).toValue(
      ({ rooms }: { rooms: string[] }) => rooms,
    );
    this.bind({ key: WebSocketBindingKeys.REDIS_CONNECTION }).toValue(
      new RedisHelper({ name: 'app', host: '127.0.0.1', port: this.redisPort, logger: silentLogger }),
    );
    this.bind({ key: WebSocketBindingKeys.SERVER_OPTIONS }).toValue({
      identifier: 'with-api',
      fleet: { interval: 100, ttl: 1_000 },
    });
    this.bind<IHttpApiComponentOptions>({ key: HttpApiBindingKeys.OPTIONS }).toValue({ keys: [KEY] });
    this.component(WebSocketComponent);
    this.component(HttpApiComponent);
  }
}

let redis: RedisServer;
let app: App;
let url: string;
beforeAll(async () => {
  redis = await RedisServer.start();
  app = new App(redis.port);
  url = (await app.start()).url;
});
afterAll(async () => {
  await app?.stop();
  await redis?.stop();
});

const get = (path: string, key: string | null = KEY) =>
  fetch(`${url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

test('mounted in an application at /api: lists its own instance, publishes to its clients, refuses without a key', async () => {
  const client = await TestClient.authenticated(`${url.replace('http', 'ws')}/ws`);
  client.send({ event: 'join', data: { rooms: ['mounted'] }, id: 'j' });
  await client.next('join');
  let instances: any[] = [];
  for (let n = 0; n < 40; n++) {
    instances = ((await (await get('/api/instances')).json()) as any).instances;
    if (instances[0]?.authenticated === 1) break;
    await Bun.sleep(50);
  }
  expect(instances.map((i) => [i.identifier, i.authenticated])).toEqual([['with-api', 1]]);
  const published = await fetch(`${url}/api/publish/room`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ room: 'mounted', event: 'hello', data: { via: 'component' } }),
  });
  expect(published.status).toBe(200);
  expect((await client.next('hello')).data).toEqual({ via: 'component' });
  expect((await get('/api/instances', null)).status).toBe(401);
  const missing = await get('/api/nowhere');
  expect([missing.status, ((await missing.json()) as any).error.code]).toEqual([404, 'NOT_FOUND']);
  const doc = (await (await get('/api/openapi.json', null)).json()) as any;
  expect(doc.servers).toEqual([{ url: '/api' }]);
  expect(doc.paths['/instances']).toBeDefined();
  client.close();
});

test('mounted in an application: GET /api/connections asks the instances through the running helper', async () => {
  const client = await TestClient.authenticated(`${url.replace('http', 'ws')}/ws`, {
    token: 'ok',
    user: 'lin',
  });
  const answer = (await (await get('/api/connections?userId=lin')).json()) as any;
  expect(answer.complete).toBe(true);
  expect(answer.connections.map((c: { clientId: string; userId: string }) => [c.clientId, c.userId])).toEqual(
    [[client.id, 'lin']],
  );
  client.close();
});
