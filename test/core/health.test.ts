// Liveness, readiness and drain, against real applications, a real redis-server
// (killed and restarted here) and real WebSocket clients.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { RedisHelper, silentLogger } from '../../src/index.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import { RedisServer } from '../support/redis-server.ts';
import { eventually, serverPerTest } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { startApp, type TestApplication, withAuth } from './app-fixture.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(serverOptions: Record<string, unknown> = {}, extra = {}): Promise<TestApplication> {
  const app = await startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: serverOptions, ...extra }));
  cleanups.push(() => app.stop());
  return app;
}

const httpUrl = (app: TestApplication, path: string) => `http://127.0.0.1:${app.getAddress().port}${path}`;

async function probe(app: TestApplication, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(httpUrl(app, path));
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe('liveness and readiness', () => {
  test('single-instance mode: /livez and /readyz answer 200; the paths can be moved or turned off', async () => {
    const app = await started();
    expect(await probe(app, '/livez')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await probe(app, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } });

    const moved = await started({ livenessPath: '/-/alive', readinessPath: false });
    expect((await probe(moved, '/-/alive')).status).toBe(200);
    expect((await fetch(httpUrl(moved, '/readyz'))).status).toBe(404); // falls through to Hono
    expect((await fetch(httpUrl(moved, '/health'))).status).toBe(200); // the app's own routes still work
  });

  test('bad health paths or drain window fail start() with a message naming the option', async () => {
    for (const [options, message] of [
      [{ livenessPath: 'livez' }, 'livenessPath must be false or a path'],
      [{ readinessPath: '/ws' }, 'readinessPath must be false or a path'],
      [{ drainWindow: -1 }, 'drainWindow must be a number of milliseconds >= 0'],
    ] as const) {
      await expect(startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: options }))).rejects.toThrow(
        `[WebSocketComponent] ${message}`,
      );
    }
  });
});

describe('readiness follows Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  test('503 with the reason while Redis is down, 200 again once it is back; liveness stays 200', async () => {
    const redisHelper = new RedisHelper({
      name: 'health',
      host: '127.0.0.1',
      port: redis.port,
      autoConnect: false,
      logger: silentLogger,
    });
    const app = await started({}, { [WebSocketBindingKeys.REDIS_CONNECTION]: redisHelper });
    expect(await probe(app, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } });

    await redis.kill();
    let down: { status: number; body: any } = { status: 0, body: undefined };
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && down.status !== 503) {
      down = await probe(app, '/readyz');
      if (down.status !== 503) await Bun.sleep(20);
    }
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('not ready');
    expect(down.body.reasons.join(' ')).toMatch(
      /redis (publisher|subscriber) (reconnecting|connecting|close|end)/,
    );
    expect((await probe(app, '/livez')).status).toBe(200);

    await redis.restart();
    let up = down;
    const again = Date.now() + 10_000;
    while (Date.now() < again && up.status !== 200) {
      up = await probe(app, '/readyz');
      if (up.status !== 200) await Bun.sleep(50);
    }
    expect(up).toEqual({ status: 200, body: { status: 'ready' } });
  }, 20_000);
});

describe('drain', () => {
  test('stop() with drainWindow: not ready at once, upgrades refused, clients closed with 1012 spread over the window, still served meanwhile', async () => {
    const window = 600;
    const app = await startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { drainWindow: window } }));
    const clients = await Promise.all(
      Array.from({ length: 12 }, () => TestClient.authenticated(app.wsUrl())),
    );
    const closedAt = new Map<TestClient, number>();
    for (const client of clients) void client.closed.then(() => closedAt.set(client, Date.now()));

    const drainStarted = Date.now();
    const stopping = app.stop();
    expect(await probe(app, '/readyz')).toEqual({
      status: 503,
      body: { status: 'not ready', reasons: ['draining'] },
    });
    expect((await rawUpgrade(app.wsUrl())).status).toBe(503);

    await Bun.sleep(100);
    const broadcastAt = Date.now();
    app.helper.broadcast({ event: 'still-here', data: 1 });

    await stopping;
    await eventually(() => closedAt.size === clients.length, 3_000, 'every client to see its close');
    for (const client of clients) {
      expect(client.closeInfo).toEqual({ code: 1012, reason: 'Server restarting: reconnect' });
    }
    const times = [...closedAt.values()].sort((a, b) => a - b);
    const spread = times.at(-1)! - times[0]!;
    expect(spread).toBeGreaterThanOrEqual(window * 0.6);
    expect(times.at(-1)! - drainStarted).toBeLessThan(window + 1_500);
    // Clients that were still connected well after the broadcast got it: a draining instance still delivers.
    const laterClosed = clients.filter((client) => closedAt.get(client)! > broadcastAt + 100);
    expect(laterClosed.length).toBeGreaterThan(0);
    for (const client of laterClosed) expect(client.all('still-here')).toHaveLength(1);
  });
});

describe('drain with the helper alone', () => {
  const serve = serverPerTest();

  test('a socket opened during the drain is closed with 1012; a bad drainWindow rejects', async () => {
    const { helper, url } = await serve();
    await expect(helper.shutdown({ drainWindow: Number.NaN })).rejects.toThrow(
      'drainWindow must be a number >= 0',
    );
    const first = await TestClient.authenticated(url);
    const stopping = helper.shutdown({ drainWindow: 400 });
    expect(helper.getReadiness()).toEqual({ ready: false, reasons: ['draining'] });
    const late = await TestClient.connect(url); // the hand-written fetch handler still upgrades
    expect(await late.closedWithin(2_000)).toEqual({ code: 1012, reason: 'Server draining: reconnect' });
    expect(await first.closedWithin(2_000)).toMatchObject({ code: 1012 });
    await stopping;
    expect(helper.getReadiness()).toEqual({ ready: false, reasons: ['shut down'] });
  });
});
