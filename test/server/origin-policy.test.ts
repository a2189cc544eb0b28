// The Origin check as helper-only applications use it: the exported functions,
// called in their own fetch handler before server.upgrade().
import { afterEach, describe, expect, test } from 'bun:test';
import { createOriginCheck, isOriginAllowed, silentLogger, WebSocketServerHelper } from '../../src/index.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import { acceptOkToken } from '../support/server.ts';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const upgradeFrom = (origin: string | undefined, host = 'chat.example.com') =>
  new Request('http://chat.example.com/ws', {
    headers: { upgrade: 'websocket', host, ...(origin === undefined ? {} : { origin }) },
  });

describe('isOriginAllowed in a hand-written fetch handler', () => {
  test('a foreign origin gets the 403 the application returns, and the helper never sees a socket', async () => {
    const server = Bun.serve<{ clientId: string }>({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => new Response('starting', { status: 503 }),
      websocket: { message() {} },
    });
    const helper = new WebSocketServerHelper({
      identifier: 'origin-test',
      server,
      authenticateFn: acceptOkToken,
      logger: silentLogger,
    });
    await helper.configure();
    stops.push(async () => {
      await helper.shutdown();
      server.stop(true);
    });
    const allowedOrigins = ['https://app.example.com'];
    server.reload({
      fetch(request, srv) {
        if (!isOriginAllowed({ request, allowedOrigins })) return new Response('Forbidden', { status: 403 });
        return srv.upgrade(request, { data: { clientId: crypto.randomUUID() } })
          ? undefined
          : new Response('Upgrade failed', { status: 500 });
      },
      websocket: helper.getBunWebSocketHandler(),
    });
    const url = `ws://127.0.0.1:${server.port}/ws`;

    expect((await rawUpgrade(url, { origin: 'https://evil.example' })).status).toBe(403);
    expect(helper.getStats().authTimers).toBe(0); // no socket was ever opened, so no auth timer started
    expect((await rawUpgrade(url, { origin: 'https://app.example.com' })).status).toBe(101);
    expect((await rawUpgrade(url, {})).status).toBe(101);
  });
});

describe('createOriginCheck', () => {
  test('same-origin compares host and port with the Host header, default ports included', () => {
    const same = createOriginCheck();
    expect(same(upgradeFrom('https://chat.example.com'))).toBe(true);
    expect(same(upgradeFrom('https://chat.example.com', 'chat.example.com:443'))).toBe(true);
    expect(same(upgradeFrom('http://chat.example.com', 'chat.example.com:80'))).toBe(true);
    expect(same(upgradeFrom('https://chat.example.com', 'CHAT.example.com'))).toBe(true);
    expect(same(upgradeFrom('http://[::1]:3000', '[::1]:3000'))).toBe(true);
    expect(same(upgradeFrom(undefined))).toBe(true);
    expect(same(upgradeFrom('https://chat.example.com', 'chat.example.com:8443'))).toBe(false);
    expect(same(upgradeFrom('http://[::1]:3001', '[::1]:3000'))).toBe(false);
    expect(same(upgradeFrom('https://evil.example'))).toBe(false);
    expect(same(upgradeFrom('null'))).toBe(false);
    expect(same(upgradeFrom('https://chat.example.com/'))).toBe(true); // URL parsing ignores the slash
  });

  test("'*' (alone or in a list) allows all; a list replaces same-origin", () => {
    expect(createOriginCheck('*')(upgradeFrom('https://evil.example'))).toBe(true);
    expect(createOriginCheck(['https://a.example', '*'])(upgradeFrom('https://evil.example'))).toBe(true);
    expect(createOriginCheck([])(upgradeFrom('https://chat.example.com'))).toBe(false);
    expect(createOriginCheck([])(upgradeFrom(undefined))).toBe(true);
  });

  test('misconfiguration throws at creation, naming the entry', () => {
    expect(() => createOriginCheck('https://one.example' as never)).toThrow(
      "[allowedOrigins] must be 'same-origin', '*' or an array of origins",
    );
    for (const bad of [
      'example.com',
      '*.example.com',
      'https://example.com/ws',
      'https://*',
      'https://a.*.b',
      '',
    ]) {
      expect(() => createOriginCheck([bad])).toThrow(
        `[allowedOrigins] ${JSON.stringify(bad)} is not an origin`,
      );
    }
    expect(() => createOriginCheck(['https://app.example.com/', 'https://*.example.com:8443'])).not.toThrow();
  });
});
