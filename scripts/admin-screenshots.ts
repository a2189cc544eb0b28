// Makes the admin UI screenshots of docs/admin.md: three instances (child processes) on a real
// redis-server, a few dozen real WebSocket clients in some rooms, a history room with messages,
// and the page in Chromium signed in, a room open and a user's connections listed.
//
//   bun run scripts/admin-screenshots.ts          # writes docs/admin.png and docs/admin-sign-in.png
//
// Needs redis-server and Chromium (CHROMIUM_PATH, default /usr/bin/chromium), as the tests do.

import { ADMIN_KEY, signIn, startAdminFleet } from '../test/admin-ui/harness.ts';
import { launchChromium } from '../test/browser/demo-harness.ts';

const OUT = new URL('../docs/', import.meta.url).pathname;

const fleet = await startAdminFleet(3);
const browser = await launchChromium();
try {
  const [edge1, edge2, edge3] = fleet.instances;
  if (!edge1 || !edge2 || !edge3) throw new Error('three instances expected');
  const rooms = ['p-lobby', 'p-support', 'h-announcements', 'match-17', 'match-23'];
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
  let n = 0;
  for (const user of users) {
    for (const instance of [edge1, edge2, edge3].slice(0, 1 + (n % 3))) {
      const client = await fleet.connect(instance, user);
      const joined = rooms.filter((_, k) => (n + k) % 2 === 0 || k === 0);
      client.send({ event: 'join', data: { rooms: joined } });
      await client.next('join');
      n++;
    }
  }
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
  await Bun.sleep(1_200); // one more refresh, so the rates are over a full interval
  await page.screenshot({ path: `${OUT}admin.png`, fullPage: true });
  console.log(`wrote ${OUT}admin.png and ${OUT}admin-sign-in.png`);
} finally {
  await browser.close();
  await fleet.stop();
}
