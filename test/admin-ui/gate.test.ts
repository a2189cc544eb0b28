// The admin UI's gate, headers and action forwarding: against real applications (Bun.serve on
// port 0, the WebSocket component) for what the component serves, and against `createAdminUi`
// with a recording API for the forwarding rules (rate, size, log) in isolation.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { ADMIN_ACTION_HEADER, createAdminUi } from '../../src/admin-ui/admin-ui.ts';
import { AdminGate, keyFingerprint } from '../../src/admin-ui/gate.ts';
import { ADMIN_CSP } from '../../src/admin-ui/headers.ts';
import { resolveAdminUiOptions } from '../../src/admin-ui/options.ts';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { RedisHelper, silentLogger } from '../../src/index.ts';
import { startApp, type TestApplication, withAuth } from '../core/app-fixture.ts';
import { RedisServer } from '../support/redis-server.ts';
import { recordingLogger } from '../support/server.ts';

const KEY = 'admin-key-0123456789';
const OTHER_KEY = 'other-key-0123456789';

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Bindings with these server options and a Redis connection (the admin UI's API needs Redis). */
function bindings(serverOptions: Record<string, unknown>) {
  const redisConnection = new RedisHelper({
    name: 'gate-test',
    host: '127.0.0.1',
    port: redis.port,
    autoConnect: false,
    logger: silentLogger,
  });
  return withAuth({
    [WebSocketBindingKeys.SERVER_OPTIONS]: serverOptions,
    [WebSocketBindingKeys.REDIS_CONNECTION]: redisConnection,
  });
}

async function started(
  serverOptions: Record<string, unknown>,
  logger = recordingLogger(),
): Promise<TestApplication> {
  const app = await startApp(bindings(serverOptions), { logger });
  cleanups.push(() => app.stop());
  return app;
}

const url = (app: TestApplication, path: string) => `http://127.0.0.1:${app.getAddress().port}${path}`;

/** Signs in with `key`; the session cookie (name=value) or undefined. */
async function signIn(app: TestApplication, key: string, path = '/admin'): Promise<string | undefined> {
  const response = await fetch(url(app, `${path}/login`), {
    method: 'POST',
    body: new URLSearchParams({ key }),
    redirect: 'manual',
  });
  const cookie = response.headers.get('set-cookie');
  return response.status === 303 && cookie ? cookie.split(';')[0] : undefined;
}

describe('admin UI gate', () => {
  test('off by default: nothing is served under /admin', async () => {
    const app = await started({});
    expect((await fetch(url(app, '/admin/'))).status).toBe(404); // falls through to the app's router
    expect((await fetch(url(app, '/admin/admin.js'))).status).toBe(404);
  });

  test('configure refuses an admin UI without its own authentication, with a short key, or on a taken path', async () => {
    for (const [adminUi, message] of [
      [{}, 'adminUi needs its own authentication'],
      [{ keys: ['short'] }, 'at least 16 characters'],
      [{ keys: [KEY], path: '/ws' }, 'overlaps another path'],
      [{ keys: [KEY], path: 'admin' }, 'adminUi.path must start with "/"'],
      [{ authorize: 'yes' }, 'adminUi.authorize must be a function'],
      [{ keys: [KEY], refreshInterval: 10 }, 'adminUi.refreshInterval must be a number >= 500'],
    ] as const) {
      await expect(startApp(bindings({ adminUi }))).rejects.toThrow(message);
    }
    // Its API reads Redis: without a Redis connection, no admin UI.
    await expect(
      startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { adminUi: { keys: [KEY] } } })),
    ).rejects.toThrow('adminUi needs Redis');
  });

  test('with fleet off, a warning says this instance will not be listed; with fleet on, none', async () => {
    const quiet = recordingLogger();
    await started({ adminUi: { keys: [KEY] }, fleet: true }, quiet);
    expect(quiet.lines.some((line) => line.message.includes('fleet is off'))).toBe(false);
    const warned = recordingLogger();
    await started({ adminUi: { keys: [KEY] } }, warned);
    expect(warned.lines.filter((line) => line.level === 'warn').map((line) => line.message)).toContain(
      '[WebSocketComponent] adminUi is on but fleet is off: this instance does not announce itself in the fleet the admin UI lists (set fleet: true on every instance)',
    );
  });

  test('without a session: 401 and the sign-in form, never the page, its script or the API', async () => {
    const app = await started({ adminUi: { keys: [KEY] } });
    const page = await fetch(url(app, '/admin/'));
    expect(page.status).toBe(401);
    const html = await page.text();
    expect(html).toContain('name="key"');
    expect(html).not.toContain('admin.js');
    expect(html).not.toContain('id="instances"');
    expect((await fetch(url(app, '/admin/admin.js'))).status).toBe(401);
    const apiAnswer = await fetch(url(app, '/admin/api/instances'));
    expect(apiAnswer.status).toBe(401);
    expect(await apiAnswer.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'sign in to the admin UI first' },
    });
    // The redirect of the bare path, and the stylesheet of the sign-in form, are all it serves.
    expect((await fetch(url(app, '/admin'), { redirect: 'manual' })).headers.get('location')).toBe('/admin/');
    expect((await fetch(url(app, '/admin/admin.css'))).status).toBe(200);
  });

  test('a wrong key is refused (401, logged); the right one sets an HttpOnly SameSite=Strict cookie scoped to the path', async () => {
    const logger = recordingLogger();
    const app = await started({ adminUi: { keys: [{ key: KEY, operator: 'ada' }] } }, logger);
    expect(await signIn(app, OTHER_KEY)).toBeUndefined();
    expect(logger.lines.some((line) => line.message.includes('admin sign-in refused'))).toBe(true);

    const response = await fetch(url(app, '/admin/login'), {
      method: 'POST',
      body: new URLSearchParams({ key: KEY }),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    const cookie = response.headers.get('set-cookie')!;
    expect(cookie).toMatch(
      /^roomcast_admin=v1\.\d+\.[0-9a-f]{16}\.[\w-]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=3600$/,
    );
    expect(cookie).not.toContain(KEY);

    const page = await fetch(url(app, '/admin/'), { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-operator="ada"');
    expect(html).toContain('src="/admin/admin.js"');
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script
    expect(page.headers.get('content-security-policy')).toBe(ADMIN_CSP);
    expect(ADMIN_CSP).toContain("frame-ancestors 'none'");
    expect(ADMIN_CSP).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const script = await fetch(url(app, '/admin/admin.js'), { headers: { cookie: cookie.split(';')[0]! } });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(logger.lines.some((line) => line.message.includes('operator ada signed in'))).toBe(true);
  });

  test('the API behind the gate answers a signed-in operator; a bearer key of its own does not get past the gate', async () => {
    const app = await started({ adminUi: { keys: [KEY] }, fleet: { interval: 100 } });
    const session = (await signIn(app, KEY))!;
    const signedIn = await fetch(url(app, '/admin/api/instances'), { headers: { cookie: session } });
    expect(signedIn.status).toBe(200);
    expect(signedIn.headers.get('cache-control')).toBe('no-store');
    const answer = (await signedIn.json()) as { instances: Array<{ identifier: string }> };
    expect(answer.instances.map((instance) => instance.identifier)).toEqual(['WEBSOCKET_SERVER']);
    const bearer = await fetch(url(app, '/admin/api/instances'), {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(bearer.status).toBe(401);
    // The OpenAPI document of the admin's API is behind the gate too.
    expect((await fetch(url(app, '/admin/api/openapi.json'))).status).toBe(401);
  });

  test('a forged, tampered or expired session is refused; removing the key (rotation) ends its sessions at once', async () => {
    let keys: string[] = [KEY, OTHER_KEY];
    const app = await started({ adminUi: { keys: () => keys } });
    const session = (await signIn(app, KEY))!;
    const page = (cookie: string) =>
      fetch(url(app, '/admin/'), { headers: { cookie } }).then((r) => r.status);
    expect(await page(session)).toBe(200);
    const [, value] = session.split('=') as [string, string];
    const [v, expires, fingerprint, mac] = value.split('.') as [string, string, string, string];
    expect(await page(`roomcast_admin=${v}.${Number(expires) + 60}.${fingerprint}.${mac}`)).toBe(401);
    expect(await page(`roomcast_admin=${v}.${expires}.${keyFingerprint(OTHER_KEY)}.${mac}`)).toBe(401);
    expect(await page(`roomcast_admin=${v}.${expires}.${fingerprint}.${mac.slice(1)}A`)).toBe(401);
    expect(await page('roomcast_admin=v1.1.2.3.4')).toBe(401);
    // The other key still signs in; the first one's sessions end when it leaves the list.
    keys = [OTHER_KEY];
    expect(await page(session)).toBe(401);
    expect(await signIn(app, KEY)).toBeUndefined();
    expect(await signIn(app, OTHER_KEY)).toBeDefined();
  });

  test('sessions expire: a cookie signed for a past time is refused', () => {
    let now = 1_000_000_000_000;
    const options = resolveAdminUiOptions({ keys: [KEY], sessionTtl: 60_000 }, [])!;
    const gate = new AdminGate(options, () => now);
    const { session, operator } = gate.signIn(KEY)!;
    expect(operator).toBe(`key:${keyFingerprint(KEY).slice(0, 8)}`);
    expect(gate.verifySession(session)).toBe(operator);
    now += 61_000;
    expect(gate.verifySession(session)).toBeUndefined();
  });

  test('authorize(request): its identity lets the operator in; a refusal or a throw is 403', async () => {
    const logger = recordingLogger();
    const app = await started(
      {
        adminUi: {
          path: '/ops',
          authorize: (request: Request) => {
            const user = request.headers.get('x-test-user');
            if (user === 'boom') throw new Error('identity provider down');
            return user;
          },
        },
      },
      logger,
    );
    const as = (user?: string) => fetch(url(app, '/ops/'), { headers: user ? { 'x-test-user': user } : {} });
    expect((await as()).status).toBe(403);
    expect((await as('boom')).status).toBe(403);
    expect(logger.lines.some((line) => line.message.includes('adminUi.authorize failed'))).toBe(true);
    const allowed = await as('grace');
    expect(allowed.status).toBe(200);
    const html = await allowed.text();
    expect(html).toContain('data-operator="grace"');
    expect(html).toContain('data-api="/ops/api"');
    expect(html).toContain('id="sign-out" method="post" action="/ops/logout" data-show="no"');
    expect((await fetch(url(app, '/ops/api/instances'))).status).toBe(403);
    // No keys: the sign-in form's target refuses too (a key cannot open a hook-only UI).
    const keyed = await fetch(url(app, '/ops/login'), {
      method: 'POST',
      body: new URLSearchParams({ key: KEY }),
    });
    expect(keyed.status).toBe(403);
    expect(keyed.headers.get('set-cookie')).toBeNull();
  });

  test('a hook that never answers refuses the request after its bound (logged), holding nothing', async () => {
    const errors: unknown[] = [];
    const options = resolveAdminUiOptions({ authorize: () => new Promise<string>(() => {}) }, [])!;
    const gate = new AdminGate(options, Date.now, 50);
    const started = performance.now();
    const verdict = await gate.identify(new Request('http://127.0.0.1/admin/'), (error) =>
      errors.push(error),
    );
    expect(verdict).toEqual({ reason: 'refused' });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(String(errors[0])).toContain('did not answer within 50 ms');
  });

  test('the operator name is escaped in the page', async () => {
    const app = await started({ adminUi: { authorize: () => '"><img src=x onerror=alert(1)>' } });
    const html = await (await fetch(url(app, '/admin/'))).text();
    expect(html).not.toContain('<img');
    expect(html).toContain('data-operator="&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"');
  });

  test('sign-in attempts are rate-limited per address; a cross-site sign-in is refused', async () => {
    const app = await started({ adminUi: { keys: [KEY], signInRate: { perSecond: 0.01, burst: 3 } } });
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) {
      const response = await fetch(url(app, '/admin/login'), {
        method: 'POST',
        body: new URLSearchParams({ key: OTHER_KEY }),
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    const crossSite = await fetch(url(app, '/admin/login'), {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
      body: new URLSearchParams({ key: KEY }),
    });
    expect(crossSite.status).toBe(403);
  });
});

describe('admin actions through createAdminUi', () => {
  async function adminWith(actionRate = { perSecond: 0.01, burst: 2 }) {
    const logger = recordingLogger();
    const seen: Array<{ method: string; path: string; body: string; headers: Headers }> = [];
    const handler = await createAdminUi({
      options: resolveAdminUiOptions({ authorize: () => 'ada', actionRate }, [])!,
      logger,
      clientAddress: () => '127.0.0.1',
      api: async (request) => {
        const parsed = new URL(request.url);
        seen.push({
          method: request.method,
          path: parsed.pathname + parsed.search,
          body: await request.text(),
          headers: request.headers,
        });
        return Response.json({ ok: true });
      },
    });
    const send = (path: string, init: RequestInit = {}) => {
      const request = new Request(`http://127.0.0.1:1${path}`, init);
      return handler(request, new URL(request.url).pathname)!;
    };
    return { logger, seen, send };
  }

  test('reads are forwarded with the prefix taken off; answers carry the security headers', async () => {
    const { seen, send } = await adminWith();
    const answer = await send('/admin/api/rooms/top?limit=5');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('content-security-policy')).toBe(ADMIN_CSP);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /rooms/top?limit=5']);
  });

  test('an action needs the admin header and the same origin; it is rate-limited per operator and logged with the operator, never its payload', async () => {
    const { logger, seen, send } = await adminWith();
    const body = JSON.stringify({ room: 'lobby', event: 'note', data: { secret: 'do-not-log' } });
    const post = (headers: Record<string, string>) =>
      send('/admin/api/publish', { method: 'POST', headers, body });
    expect((await post({})).status).toBe(403);
    expect(
      (await post({ [ADMIN_ACTION_HEADER]: '1', origin: 'https://evil.example', host: '127.0.0.1:1' }))
        .status,
    ).toBe(403);
    expect(seen).toHaveLength(0);

    expect((await post({ [ADMIN_ACTION_HEADER]: '1', 'content-type': 'application/json' })).status).toBe(200);
    expect((await post({ [ADMIN_ACTION_HEADER]: '1' })).status).toBe(200);
    const limited = await post({ [ADMIN_ACTION_HEADER]: '1' });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    expect(seen).toHaveLength(2);
    expect(seen[0]!.body).toBe(body);
    expect(seen[0]!.headers.get(ADMIN_ACTION_HEADER)).toBeNull();
    const actions = logger.lines.filter((line) => line.message.includes('ada: POST /publish -> 200'));
    expect(actions).toHaveLength(2);
    expect(logger.lines.some((line) => line.message.includes('do-not-log'))).toBe(false);
    expect(logger.lines.some((line) => line.message.includes('over the action rate'))).toBe(true);
  });

  test('an action body over the bound is refused with 413 before the API sees it', async () => {
    const { seen, send } = await adminWith({ perSecond: 100, burst: 100 });
    const answer = await send('/admin/api/publish', {
      method: 'POST',
      headers: { [ADMIN_ACTION_HEADER]: '1' },
      body: 'x'.repeat(300 * 1024),
    });
    expect(answer.status).toBe(413);
    expect(seen).toHaveLength(0);
  });
});
