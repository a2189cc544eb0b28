// Cross-Site WebSocket Hijacking: the component refuses upgrades from foreign
// origins with 403 before any socket exists. Real upgrade requests (raw TCP, so
// any Origin / Host can be sent) against a real application.
import { afterEach, describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import { eventually, recordingLogger } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { startApp, TestApplication as TestApp, type TestApplication, withAuth } from './app-fixture.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function appWith(allowedOrigins?: unknown): Promise<TestApplication> {
  const serverOptions = allowedOrigins === undefined ? {} : { allowedOrigins };
  const logger = recordingLogger();
  const app = await startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: serverOptions }), { logger });
  cleanups.push(() => app.stop());
  return app;
}

/** Status of an upgrade to the app's /ws carrying `origin` (undefined: no Origin header at all). */
async function upgradeStatus(
  app: TestApplication,
  origin: string | undefined,
  host?: string,
): Promise<number> {
  return (await rawUpgrade(app.wsUrl(), { origin, ...(host ? { host } : {}) })).status;
}

/** A Bun WebSocket sending `origin`: resolves with the authenticated client, or rejects when refused. */
function connectFrom(url: string, origin: string): Promise<TestClient> {
  const ws = new WebSocket(url, { headers: { Origin: origin } } as never);
  return TestClient.attach(ws);
}

describe('the default policy: same origin as the Host header', () => {
  test('a page of this host connects; a foreign page gets 403 and leaves nothing behind; no Origin is allowed', async () => {
    const app = await appWith();
    const self = `http://127.0.0.1:${app.getAddress().port}`;

    expect(await upgradeStatus(app, self)).toBe(101);
    expect(await upgradeStatus(app, undefined)).toBe(101); // a non-browser client
    for (const foreign of [
      'https://evil.example',
      `http://127.0.0.1:${app.getAddress().port + 1}`, // same host, other port
      'null', // sandboxed iframes, file: pages
      'not a url',
    ]) {
      expect({ foreign, status: await upgradeStatus(app, foreign) }).toEqual({ foreign, status: 403 });
    }
    await eventually(() => app.helper.getStats().clients === 0, 3_000, 'the accepted raw sockets to close');

    // End to end with a real WebSocket client: the foreign page never gets a socket.
    await expect(connectFrom(app.wsUrl(), 'https://evil.example')).rejects.toThrow();
    expect(app.helper.getStats()).toMatchObject({ clients: 0, authTimers: 0 });
    const client = await connectFrom(app.wsUrl(), self);
    cleanups.push(() => client.close());
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('connected');
    expect(app.helper.getClients().size).toBe(1);
  });

  test('the comparison is against the Host header (a reverse proxy that keeps Host keeps it working)', async () => {
    const app = await appWith();
    expect(await upgradeStatus(app, 'https://chat.example.com', 'chat.example.com')).toBe(101);
    expect(await upgradeStatus(app, 'https://chat.example.com', 'chat.example.com:443')).toBe(101);
    expect(await upgradeStatus(app, 'http://chat.example.com:8080', 'chat.example.com:8080')).toBe(101);
    // The scheme is not compared: TLS is usually ended by the proxy, which then talks plain HTTP.
    expect(await upgradeStatus(app, 'https://chat.example.com:8080', 'chat.example.com:8080')).toBe(101);
    expect(await upgradeStatus(app, 'https://chat.example.com', 'chat.example.com:80')).toBe(403);
    expect(await upgradeStatus(app, 'https://chat.example.com', 'chat.example.com.evil.example')).toBe(403);
    expect(await upgradeStatus(app, 'https://evil.example', 'chat.example.com')).toBe(403);
  });

  test('other routes are not affected: Hono still serves a cross-origin GET', async () => {
    const app = await appWith();
    const response = await fetch(`http://127.0.0.1:${app.getAddress().port}/health`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(response.status).toBe(200);
  });
});

describe('allowedOrigins', () => {
  test('exact origins and wildcard subdomains; scheme and port must match', async () => {
    const app = await appWith(['https://app.example.com', 'http://localhost:5173', 'https://*.example.org']);
    const cases: Array<[string | undefined, number]> = [
      ['https://app.example.com', 101],
      ['https://APP.Example.com', 101],
      ['http://localhost:5173', 101],
      ['https://a.example.org', 101],
      ['https://a.b.example.org', 101],
      [undefined, 101],
      ['http://app.example.com', 403],
      ['https://app.example.com:8443', 403],
      ['https://other.example.com', 403],
      ['https://example.org', 403], // a wildcard does not cover the bare domain
      ['https://evilexample.org', 403],
      ['https://example.org.evil.example', 403],
      ['http://a.example.org', 403],
      [`http://127.0.0.1:${app.getAddress().port}`, 403], // listing origins replaces same-origin
    ];
    const seen = [];
    for (const [origin, _] of cases) seen.push([origin, await upgradeStatus(app, origin)]);
    expect(seen).toEqual(cases);
  });

  test("'*' allows every origin, said explicitly", async () => {
    const app = await appWith('*');
    expect(await upgradeStatus(app, 'https://anything.example')).toBe(101);
    expect(await upgradeStatus(app, 'null')).toBe(101);
  });

  test('an entry that is not an origin fails start() with a message naming it', async () => {
    for (const bad of ['example.com', 'https://example.com/path', 'https://app.*.example.com', 42]) {
      const app = new TestApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { allowedOrigins: [bad] } }));
      await expect(app.start()).rejects.toThrow(
        `[WebSocketComponent] [allowedOrigins] ${JSON.stringify(bad)} is not an origin`,
      );
      await app.stop();
    }
  });
});
