// The component's per-IP connection rate, with real upgrade requests over TCP.
import { describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { ConnectionRateLimiter } from '../../src/server/connection-rate.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import { eventually } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { appsPerTest, startApp, withAuth } from './app-fixture.ts';

const started = appsPerTest();

describe('per-IP connection rate (component)', () => {
  test('past the burst an address gets 429 before any socket exists; a connected client keeps receiving', async () => {
    const app = await started({ connectionRate: { perSecond: 1, burst: 5 }, metrics: true });
    const member = await TestClient.authenticated(app.wsUrl()); // takes one token
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await rawUpgrade(app.wsUrl())).status);
    expect(statuses.slice(0, 4)).toEqual([101, 101, 101, 101]);
    expect(statuses.slice(4)).toEqual([429, 429, 429, 429]);
    const refused = await rawUpgrade(app.wsUrl());
    expect(refused.head.toLowerCase()).toContain('retry-after: 1');

    // Only the accepted upgrades made clients (the raw ones close at once).
    await eventually(() => app.helper.getStats().clients === 1, 2_000, 'raw sockets gone');
    app.helper.broadcast({ event: 'still-here', data: 1 });
    expect((await member.next('still-here')).data).toBe(1);
    // Other paths are not limited.
    expect((await fetch(`http://127.0.0.1:${app.getAddress().port}/health`)).status).toBe(200);
    // Counted by reason, beside the Origin refusals.
    expect((await rawUpgrade(app.wsUrl(), { origin: 'https://evil.example' })).status).toBe(403);
    const scrape = await (await fetch(`http://127.0.0.1:${app.getAddress().port}/metrics`)).text();
    expect(scrape).toContain('roomcast_upgrades_refused_total{reason="rate"} 5');
    expect(scrape).toContain('roomcast_upgrades_refused_total{reason="origin"} 1');
    // The bucket refills at perSecond.
    await Bun.sleep(1_100);
    expect((await rawUpgrade(app.wsUrl())).status).toBe(101);
    member.close();
  });

  test('clientIpFn picks the address from a trusted header: each forwarded client has its own bucket', async () => {
    const app = await started({
      connectionRate: { perSecond: 0.001, burst: 2 },
      clientIpFn: ({ request }: { request: Request }) => {
        if (request.headers.get('x-real-ip') === 'throw') throw new Error('no address');
        return request.headers.get('x-real-ip') ?? undefined;
      },
    });
    const statusFor = async (ip: string) => (await rawUpgrade(app.wsUrl(), { 'x-real-ip': ip })).status;
    expect([await statusFor('10.0.0.1'), await statusFor('10.0.0.1'), await statusFor('10.0.0.1')]).toEqual([
      101, 101, 429,
    ]);
    expect([await statusFor('10.0.0.2'), await statusFor('10.0.0.2')]).toEqual([101, 101]);
    expect(await statusFor('throw')).toBe(500); // an application bug refuses, never admits
  });

  test('connectionRateFn: an application rule, sync or async; false answers 429, a throw answers 500', async () => {
    const seen: string[] = [];
    const app = await started({
      connectionRate: false,
      connectionRateFn: async ({ ip, request }: { ip: string; request: Request }) => {
        seen.push(ip);
        await Bun.sleep(5);
        const verdict = new URL(request.url).searchParams.get('v');
        if (verdict === 'throw') throw new Error('rule broke');
        return verdict !== 'no';
      },
    });
    expect((await rawUpgrade(`${app.wsUrl()}?v=yes`)).status).toBe(101);
    expect((await rawUpgrade(`${app.wsUrl()}?v=no`)).status).toBe(429);
    expect((await rawUpgrade(`${app.wsUrl()}?v=throw`)).status).toBe(500);
    expect(seen).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    // A real client through the async path works end to end.
    const client = await TestClient.authenticated(`${app.wsUrl()}?v=yes`);
    client.close();
  });

  test('on by default, generous: 30 quick connections from one address all succeed', async () => {
    const app = await started({});
    const statuses = await Promise.all(Array.from({ length: 30 }, () => rawUpgrade(app.wsUrl())));
    expect(statuses.every(({ status }) => status === 101)).toBe(true);
  });

  test('bad connectionRate values fail start() with a message naming the field', async () => {
    for (const [options, message] of [
      [{ connectionRate: { perSecond: 0 } }, 'connectionRate.perSecond must be a number > 0'],
      [{ connectionRate: { burst: 0.5 } }, 'connectionRate.burst must be a number >= 1'],
      [{ clientIpFn: 'x-forwarded-for' }, 'clientIpFn must be a function'],
    ] as const) {
      await expect(startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: options }))).rejects.toThrow(
        `[WebSocketComponent] ${message}`,
      );
    }
  });
});

describe('ConnectionRateLimiter memory', () => {
  test('idle addresses are forgotten and the map never exceeds maxTrackedIps', () => {
    const limiter = new ConnectionRateLimiter({ perSecond: 10, burst: 10, maxTrackedIps: 100 });
    for (let i = 0; i < 1_000; i++) limiter.allow(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(limiter.size).toBe(100);
    // After a full refill (1 s here), each new request also forgets idle ones.
    for (let i = 0; i < 30; i++) limiter.allow('192.168.0.1', 2_000 + i);
    expect(limiter.size).toBeLessThan(100);
    // An address that used its burst is still refused until it refills, whatever the others do.
    const busy = new ConnectionRateLimiter({ perSecond: 1, burst: 2 });
    expect([busy.allow('a', 0), busy.allow('a', 0), busy.allow('a', 0)]).toEqual([true, true, false]);
    expect(busy.allow('a', 1_000)).toBe(true);
  });
});
