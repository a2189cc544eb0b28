// The demo, end to end, in a real Chromium: the page, the client SDK bundled
// for the browser, the demo server started as `npm start` starts it, a real
// redis-server and the announce CLI as a separate process.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, statSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { RedisServer } from '../support/redis-server.ts';
import {
  chatLines,
  eventuallyEqual,
  expectMessage,
  type IDemoProcess,
  launchChromium,
  onlineNames,
  openAs,
  runAnnounce,
  say,
  startDemo,
} from './demo-harness.ts';

const ARTIFACTS = 'test-artifacts';

let browser: Browser;
const demos: IDemoProcess[] = [];
const redisServers: RedisServer[] = [];

async function demo(env: Record<string, string> = {}): Promise<IDemoProcess> {
  const started = await startDemo(env);
  demos.push(started);
  return started;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(demos.map((running) => running.stop()));
  for (const server of redisServers) await server.stop();
});

describe('demo in Chromium', () => {
  test('two people chat in one room, join and leave rooms, and see who is online', async () => {
    const { url } = await demo();
    const ada = await openAs(browser, url, 'Ada');
    const grace = await openAs(browser, url, 'Grace');

    // The server greets each person privately.
    await ada.locator('#announcements li', { hasText: 'Welcome, Ada!' }).waitFor();

    await say(ada, 'Hello Grace!');
    await expectMessage(grace, 'Hello Grace!');
    await say(grace, 'Hi Ada');
    await expectMessage(ada, 'Hi Ada');
    await eventuallyEqual(() => onlineNames(ada), ['Ada', 'Grace']);

    // Both join #design; a message there reaches only that room.
    for (const page of [ada, grace]) {
      await page.fill('#room-name', 'design');
      await page.click('#join-form button');
      await page.locator('#room-title', { hasText: '#design' }).waitFor();
    }
    await eventuallyEqual(() => onlineNames(grace), ['Ada', 'Grace']);
    await say(ada, 'Design review at 3');
    await expectMessage(grace, 'Design review at 3');

    // Ada leaves #design: Grace sees her go from the member list.
    await ada.click('#rooms li[data-room="design"] button[aria-label="Leave #design"]');
    await eventuallyEqual(() => onlineNames(grace), ['Grace']);
    await grace.locator('#messages li.system', { hasText: 'Ada left' }).waitFor();
    expect(await ada.locator('#rooms li').count()).toBe(1);

    // The status panel reports this instance.
    await eventuallyEqual(
      () => ada.locator('#status dd[data-field="mode"]').textContent(),
      'single instance',
    );
    await eventuallyEqual(() => ada.locator('#status dd[data-field="clients here"]').textContent(), '2');
  }, 30_000);

  test('cookie session: signed in over HTTP, the socket authenticates from an HttpOnly cookie the page never sees', async () => {
    const { url } = await demo();
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(8_000);
      // Every frame the page's WebSockets send, to show no credentials travel in them.
      const sent: string[] = [];
      page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => sent.push(String(payload))));
      await page.goto(url);
      await page.fill('#name', 'Hedy');
      await page.check('#cookie-session');
      await page.click('#sign-in-form button[type="submit"]');
      await page.waitForSelector('#connection[data-state="connected"]');
      await page.locator('#announcements li', { hasText: 'Welcome, Hedy!' }).waitFor();

      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ name: 'demo_session', httpOnly: true, sameSite: 'Strict' });
      expect(await page.evaluate(() => document.cookie)).toBe(''); // HttpOnly: out of the script's reach
      const authenticate = sent
        .map((text) => JSON.parse(text))
        .find((frame) => frame.event === 'authenticate');
      expect(authenticate.data).toEqual({}); // no name, no token: the cookie alone signed the socket in
      expect(sent.some((text) => text.includes(cookie?.value ?? '?'))).toBe(false);

      // The chat works as usual, and a reload resumes the session without the form.
      await say(page, 'Signed in by cookie');
      await expectMessage(page, 'Signed in by cookie');
      await page.reload();
      await page.waitForSelector('#connection[data-state="connected"]');
      await page.locator('#announcements li', { hasText: 'Welcome, Hedy!' }).waitFor();
      expect(await page.isHidden('#sign-in')).toBe(true);

      // Without the cookie the same empty authenticate is refused (4003).
      const stranger = await browser.newPage();
      await stranger.goto(url);
      const code = await stranger.evaluate(
        (path) =>
          new Promise<number>((resolve) => {
            const socket = new WebSocket(`ws://${location.host}${path}`);
            socket.onopen = () => socket.send(JSON.stringify({ event: 'authenticate', data: {} }));
            socket.onclose = (event) => resolve(event.code);
          }),
        '/ws',
      );
      expect(code).toBe(4003);
      await stranger.close();
    } finally {
      await context.close();
    }
  }, 30_000);

  test('two instances sharing Redis: chat crosses instances and the announce CLI reaches both pages', async () => {
    const redis = await RedisServer.start();
    redisServers.push(redis);
    const [first, second] = await Promise.all([
      demo({ REDIS_URL: redis.url }),
      demo({ REDIS_URL: redis.url }),
    ]);
    expect(first.url).not.toBe(second.url);
    const linus = await openAs(browser, first.url, 'Linus');
    const margaret = await openAs(browser, second.url, 'Margaret');

    await say(linus, 'Hello from instance one');
    await expectMessage(margaret, 'Hello from instance one');
    await say(margaret, 'Hello back from instance two');
    await expectMessage(linus, 'Hello back from instance two');
    // Presence is shared through Redis: each page lists the person on the other instance.
    await eventuallyEqual(() => onlineNames(linus), ['Linus', 'Margaret']);
    await eventuallyEqual(
      () => margaret.locator('#status dd[data-field="mode"]').textContent(),
      'Redis · 2 instances',
    );

    const announced = await runAnnounce(['--room', 'lobby', 'Deploy at 17:00 — save your work'], redis.url);
    expect(announced).toMatchObject({ code: 0, err: '' });
    expect(announced.out).toContain('announced to room "lobby"');
    for (const page of [linus, margaret]) {
      await page.locator('#announcements li', { hasText: 'Deploy at 17:00' }).waitFor();
    }

    const toUser = await runAnnounce(['--user', 'Margaret', 'Only for Margaret'], redis.url);
    expect(toUser.code).toBe(0);
    await margaret.locator('#announcements li', { hasText: 'Only for Margaret' }).waitFor();
    expect(await linus.locator('#announcements li', { hasText: 'Only for Margaret' }).count()).toBe(0);

    const path = `${ARTIFACTS}/demo-multi-instance.png`;
    await linus.screenshot({ path });
    const { size } = statSync(path);
    expect(size).toBeGreaterThan(10_000);
    const header = new Uint8Array(await Bun.file(path).slice(0, 8).arrayBuffer());
    expect([...header]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]); // a PNG

    // Both instances stop gracefully on SIGTERM.
    expect(await first.stop()).toBe(0);
    expect(await second.stop()).toBe(0);
  }, 40_000);

  test('rooms keep history: a newcomer sees recent messages; a page whose instance crashed catches up without a gap and says so', async () => {
    const redis = await RedisServer.start();
    redisServers.push(redis);
    const [first, second] = await Promise.all([
      demo({ REDIS_URL: redis.url }),
      demo({ REDIS_URL: redis.url }),
    ]);
    const ada = await openAs(browser, first.url, 'Ada');
    await say(ada, 'earlier one');
    await say(ada, 'earlier two');
    await expectMessage(ada, 'earlier two');

    // Grace arrives later, on the other instance: the lobby's recent messages are there.
    const grace = await openAs(browser, second.url, 'Grace');
    await eventuallyEqual(() => chatLines(grace), ['earlier one', 'earlier two']);

    // Grace's instance crashes; Ada keeps talking meanwhile.
    second.proc.kill('SIGKILL');
    await second.proc.exited;
    await grace.locator('#connection[data-state="reconnecting"]').waitFor();
    for (const text of ['while away 1', 'while away 2', 'while away 3']) await say(ada, text);
    await expectMessage(ada, 'while away 3');

    // The instance comes back on the same port; Grace's page reconnects and recovers from Redis.
    await demo({ REDIS_URL: redis.url, PORT: new URL(second.url).port });
    await grace.locator('#connection[data-state="connected"]').waitFor({ timeout: 20_000 });
    // Under load a second recovery (a gap repair while live traffic resumes) may add another line;
    // the exact message list below is the proof that nothing was lost or repeated.
    await grace.locator('#messages li.system', { hasText: 'Back in sync' }).first().waitFor();
    await say(ada, 'after the restart');
    await expectMessage(grace, 'after the restart');
    // Every message exactly once, in order: no gap, no duplicate.
    expect(await chatLines(grace)).toEqual([
      'earlier one',
      'earlier two',
      'while away 1',
      'while away 2',
      'while away 3',
      'after the restart',
    ]);
  }, 60_000);

  test('single instance restarted: the page says what could not be recovered and goes on', async () => {
    const running = await demo();
    const alan = await openAs(browser, running.url, 'Alan');
    await say(alan, 'before the restart');
    await expectMessage(alan, 'before the restart');
    expect(await running.stop()).toBe(0);
    // Its memory (and so the lobby's history) went with the process: a new epoch.
    await demo({ PORT: new URL(running.url).port });
    await alan.locator('#connection[data-state="connected"]').waitFor({ timeout: 20_000 });
    await alan.locator('#messages li.system', { hasText: 'could not be recovered' }).waitFor();
    await say(alan, 'after the restart');
    await expectMessage(alan, 'after the restart');
    expect(await chatLines(alan)).toEqual(['after the restart']);
  }, 40_000);

  test('security headers: a tight CSP, no framing, nosniff, no referrer; the page works under them with no violation', async () => {
    const { url } = await demo({ DEMO_ENCRYPTION: '1' });
    for (const path of ['/', '/app.js', '/styles.css', '/api/config']) {
      const response = await fetch(new URL(path, url));
      expect(response.status).toBe(200);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    }
    // The page under that policy: every violation (console or event) is recorded.
    const context = await browser.newContext();
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    const page = await context.newPage();
    page.setDefaultTimeout(8_000);
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) {
        problems.push(message.text());
      }
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(url);
    await page.fill('#name', 'Grace');
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForSelector('#connection[data-state="connected"]');
    await page.locator('#encryption-badge:not([hidden])').waitFor();
    await say(page, 'under the policy');
    await expectMessage(page, 'under the policy');
    // A page of another origin cannot frame it.
    const framer = await context.newPage();
    await framer.setContent(`<iframe src="${url}"></iframe>`);
    await Bun.sleep(500);
    const framed = framer.frames().find((frame) => frame !== framer.mainFrame());
    expect(
      await framed
        ?.locator('#sign-in-form')
        .count()
        .catch(() => 0),
    ).toBeFalsy();
    expect(problems).toEqual([]);
    await context.close();
  }, 30_000);

  test('encrypted mode: the page negotiates a key and reads what the server encrypts', async () => {
    const { url } = await demo({ DEMO_ENCRYPTION: '1' });
    const alan = await openAs(browser, url, 'Alan');
    await alan.locator('#encryption-badge:not([hidden])').waitFor();
    // Everything after "connected" arrives as AES-GCM frames; seeing it proves decryption works.
    await alan.locator('#announcements li', { hasText: 'Welcome, Alan!' }).waitFor();
    await say(alan, 'secret hello');
    await expectMessage(alan, 'secret hello');
    await eventuallyEqual(
      () => alan.locator('#status dd[data-field="encryption"]').textContent(),
      'required (1 encrypted)',
    );
  }, 20_000);
});
