// Makes the admin UI screenshots of docs/admin.md: three instances (child processes) on a real
// redis-server, a few dozen real WebSocket clients in some rooms, a history room with messages,
// and the page in Chromium signed in, a room open and a user's connections listed.
//
//   bun run scripts/admin-screenshots.ts   # writes docs/admin.png, admin-sign-in.png, admin-confirm.png
//
// Needs redis-server and Chromium (CHROMIUM_PATH, default /usr/bin/chromium), as the tests do.

import { silentLogger } from '../src/common/logger.ts';
import { WebSocketEmitter } from '../src/emitter/websocket-emitter.ts';
import { RedisHelper } from '../src/redis/redis-helper.ts';
import { ADMIN_KEY, signIn, startAdminFleet } from '../test/admin-ui/harness.ts';
import { launchChromium } from '../test/browser/demo-harness.ts';

const OUT = new URL('../docs/', import.meta.url).pathname;

const fleet = await startAdminFleet(3);
const browser = await launchChromium();
try {
  const [edge1, edge2, edge3] = fleet.instances;
  if (!edge1 || !edge2 || !edge3) throw new Error('three instances expected');
  const instances = [edge1, edge2, edge3];
  const rooms = ['p-lobby', 'h-announcements', 'match-17', 'match-23', 'p-support'];
  const users = [
    'ada',
    'grace',
    'linus',
    'barbara',
    'ken',
    'margaret',
    'dennis',
    'frances',
    'edsger',
    'alan',
  ];
  for (const [u, user] of users.entries()) {
    // Every user on one instance, every third one on a second instance too.
    const on = u % 3 === 0 ? [instances[u % 3], instances[(u + 1) % 3]] : [instances[u % 3]];
    for (const instance of on) {
      const client = await fleet.connect(instance!, user);
      client.send({ event: 'join', data: { rooms: rooms.filter((_, k) => k <= 1 || (u + k) % 3 === 0) } });
      await client.next('join');
    }
  }
  // Some traffic while the page is open, so the rates show: a back end publishing to the lobby.
  const emitter = new WebSocketEmitter({
    redisConnection: new RedisHelper({
      name: 'screenshots',
      host: '127.0.0.1',
      port: fleet.redis.port,
      autoConnect: false,
      logger: silentLogger,
    }),
    logger: silentLogger,
  });
  await emitter.configure();
  const traffic = setInterval(() => {
    void emitter.toRoom({ room: 'p-lobby', event: 'tick', data: { at: Date.now() } });
  }, 50);
  // A few publications in the history room, sent as a back end would (the API behind the page).
  const context = await browser.newContext({ viewport: { width: 1400, height: 1050 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);

  await page.goto(`${edge1.http}/admin/`);
  await page.screenshot({ path: `${OUT}admin-sign-in.png` });

  await signIn(page, edge1, ADMIN_KEY);
  for (const [k, text] of [
    'Maintenance at 22:00 UTC',
    'New rooms for the tournament',
    'Welcome!',
  ].entries()) {
    await page.evaluate(
      async ({ text, k }) => {
        await fetch('/admin/api/publish/room', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-roomcast-admin': '1' },
          body: JSON.stringify({ room: 'h-announcements', event: 'announcement', data: { text, n: k } }),
        });
      },
      { text, k },
    );
  }
  await page.locator('#instances tbody tr[data-instance]').nth(2).waitFor();
  await page.locator('#rooms tr[data-room="p-lobby"]').waitFor();
  await page.fill('#room-name', 'h-announcements');
  await page.click('#room-form button[type="submit"]');
  await page.locator('#history tbody tr', { hasText: 'announcement' }).first().waitFor();
  await page.selectOption('#lookup-kind', 'user');
  await page.fill('#lookup-id', 'ada');
  await page.click('#lookup-form button[type="submit"]');
  await page.locator('#connections tbody tr[data-client]').first().waitFor();
  // An action, confirmed in the page (the dialog is the third screenshot).
  await page.click('#publish-form button[type="submit"]');
  await page.locator('dialog#confirm[open]').waitFor();
  await page.screenshot({ path: `${OUT}admin-confirm.png` });
  await page.click('#confirm-ok');
  await page.locator('#action-log li.done').waitFor();
  await Bun.sleep(1_200); // one more refresh, so the rates are over a full interval
  await page.screenshot({ path: `${OUT}admin.png`, fullPage: true });
  clearInterval(traffic);
  await emitter.shutdown();
  console.log(`wrote ${OUT}admin.png, ${OUT}admin-sign-in.png and ${OUT}admin-confirm.png`);
} finally {
  await browser.close();
  await fleet.stop();
}
