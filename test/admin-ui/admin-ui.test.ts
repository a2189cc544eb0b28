// The admin UI end to end in a real Chromium: three instances as child processes on one real
// redis-server, each serving the UI (test/admin-ui/fixtures/admin-instance.ts), real WebSocket
// clients, and the page driven as an operator would. Bounded: every wait has a deadline.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../browser/demo-harness.ts';
import type { TestClient } from '../support/ws-client.ts';
import { ADMIN_KEY, type IAdminFleet, type IAdminInstance, signIn, startAdminFleet } from './harness.ts';

const ARTIFACTS = 'test-artifacts';

let fleet: IAdminFleet;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [fleet, browser] = await Promise.all([startAdminFleet(3), launchChromium()]);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
}, 20_000);

async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(8_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    // Refusals the page expects (the 401 before signing in, a room without history's 409) are not errors of the page.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      errors.push(message.text());
    }
  });
  return { page, errors };
}

/** Clicks Confirm in the page's confirm dialog, after checking what it asks. */
async function confirm(page: Page, asked: string | RegExp): Promise<void> {
  const dialog = page.locator('dialog#confirm[open]');
  await dialog.waitFor();
  await expect(dialog.locator('#confirm-text').textContent()).resolves.toMatch(asked);
  await dialog.locator('#confirm-ok').click();
  await page
    .locator('dialog#confirm[open]')
    .waitFor({ state: 'detached' })
    .catch(() => {});
}

/** Re-reads `read()` until `accept` holds; fails with the last value seen after `timeoutMs`. */
async function until<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await read();
    if (accept(last)) return last;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}
const is =
  <T>(expected: T) =>
  (value: T) =>
    value === expected;

const summaryConnections = (page: Page) =>
  page.locator('#fleet-summary').getAttribute('data-connections').then(Number);

/** Action log lines (JSON) an instance wrote with `event: 'admin.action'`. */
function actionLines(instance: IAdminInstance): Array<Record<string, unknown>> {
  return instance
    .lines()
    .filter((line) => line.includes('"admin.action"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('admin UI in Chromium', () => {
  test('refused without the key: 401 and a sign-in form, never the page; a wrong key is refused', async () => {
    const { page } = await newPage();
    const [edge] = fleet.instances as [IAdminInstance];
    const response = await page.goto(`${edge.http}/admin/`);
    expect(response?.status()).toBe(401);
    expect(await page.locator('#instances').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    await page.fill('#key', 'not-the-admin-key-at-all');
    await page.click('#sign-in button[type="submit"]');
    await page.locator('#sign-in-message', { hasText: 'not accepted' }).waitFor();
    expect(await page.locator('#instances').count()).toBe(0);
    // The API behind the page is refused too, to the browser as to anyone else.
    const api = await page.evaluate(async () => (await fetch('/admin/api/instances')).status);
    expect(api).toBe(401);
    await page.context().close();
  });

  test('the fleet live: counts follow clients, rooms and members, publish and remove history, move and disconnect a client, a killed instance leaves', async () => {
    const [edge1, edge2, edge3] = fleet.instances as [IAdminInstance, IAdminInstance, IAdminInstance];
    const { page, errors } = await newPage();
    await signIn(page, edge1, ADMIN_KEY);
    expect(await page.locator('#operator').textContent()).toBe('ops-ada');

    // Three instances, no connection yet.
    await page.locator('#instances tbody tr[data-instance]').nth(2).waitFor();
    expect(await page.locator('#instances tbody tr[data-instance]').count()).toBe(3);
    await until(() => summaryConnections(page), is(0), 5_000);

    // Clients connect on all three: the counts follow.
    const join = async (client: TestClient, rooms: string[]) => {
      client.send({ event: 'join', data: { rooms } });
      await client.next('join');
    };
    const ada1 = await fleet.connect(edge1, 'ada');
    const ada2 = await fleet.connect(edge2, 'ada');
    const grace = await fleet.connect(edge2, 'grace');
    const linus = await fleet.connect(edge3, 'linus');
    for (const client of [ada1, ada2, grace, linus]) await join(client, ['p-lobby']);
    await join(linus, ['h-news']);
    await until(() => summaryConnections(page), is(4), 8_000);
    const edge3Row = page.locator(`#instances tr[data-instance] td[data-field="connections"]`);
    await until(async () => (await edge3Row.allTextContents()).sort().join(','), is('1,1,2'), 5_000);

    // The largest rooms, then a room's members (presence) from the room view.
    const lobbyRow = page.locator('#rooms tr[data-room="p-lobby"]');
    await lobbyRow.locator('td.num', { hasText: '4' }).waitFor();
    await lobbyRow.locator('button', { hasText: 'Open' }).click();
    await until(() => page.locator('#members tbody tr[data-client]').count(), is(4), 5_000);
    expect(await page.locator('#room-stats').textContent()).toContain('4 connections · 3 users present');

    // Publish a test message into a history room: the client receives it and the history shows it.
    await page.fill('#room-name', 'h-news');
    await page.click('#room-form button[type="submit"]');
    await page.click('#publish-form button[type="submit"]');
    await confirm(page, 'Publish "admin-test" to room h-news');
    const received = await linus.next('admin-test');
    expect(received.data).toEqual({ note: 'test from the admin UI' });
    await page.locator('#history tbody tr', { hasText: 'admin-test' }).waitFor();

    // Cancelled: nothing happens. Confirmed: the history is gone.
    await page.click('#remove-history');
    await page.locator('dialog#confirm[open]').waitFor();
    await page.click('#confirm-cancel');
    await Bun.sleep(300);
    expect(await page.locator('#history tbody tr', { hasText: 'admin-test' }).count()).toBe(1);
    await page.click('#remove-history');
    await confirm(page, 'Remove the history of room h-news');
    await page.locator('#history tbody tr.empty').waitFor();

    // A user's connections on every instance; move the user into a room.
    await page.selectOption('#lookup-kind', 'user');
    await page.fill('#lookup-id', 'ada');
    await page.click('#lookup-form button[type="submit"]');
    await until(() => page.locator('#connections tbody tr[data-client]').count(), is(2), 5_000);
    await page.fill('#move-room', 'p-moved');
    await page.click('#move-form button[value="join"]');
    await confirm(page, 'Move user ada into room p-moved');
    await until(
      async () =>
        (await page.locator('#connections tbody tr[data-client] td.data').allTextContents()).join('|'),
      (text) => /p-moved.*\|.*p-moved/.test(text),
      5_000,
    );

    // Disconnect one client from its connections view: the client sees the close and its code.
    await page.selectOption('#lookup-kind', 'client');
    await page.fill('#lookup-id', grace.id);
    await page.click('#lookup-form button[type="submit"]');
    await page.locator(`#connections tr[data-client="${grace.id}"]`).waitFor();
    await page.selectOption('#disconnect-code', 'no-reconnect');
    await page.click(`#connections tr[data-client="${grace.id}"] button`);
    await confirm(page, `Disconnect client ${grace.id}`);
    const closed = await Promise.race([grace.closed, Bun.sleep(5_000).then(() => undefined)]);
    expect(closed?.code).toBe(4008);
    await until(() => summaryConnections(page), is(3), 8_000);

    // Every action was logged by the instance serving the UI, with the operator, never the payload.
    const logged = actionLines(edge1);
    expect(logged.map((line) => line.action)).toEqual([
      'POST /publish/room',
      'POST /history/remove',
      'POST /join',
      'POST /disconnect',
    ]);
    expect(logged.every((line) => line.operator === 'ops-ada' && line.status === 200)).toBe(true);
    expect(logged[0]).toMatchObject({ room: 'h-news', messageEvent: 'admin-test' });
    expect(logged[3]).toMatchObject({ clientId: grace.id });
    expect(JSON.stringify(logged)).not.toContain('test from the admin UI');
    expect(await page.locator('#action-log li.done').count()).toBe(4);

    await page.screenshot({ path: `${ARTIFACTS}/admin-ui.png`, fullPage: true });

    // SIGKILL an instance: it leaves the list within the registry's TTL.
    edge3.proc.kill('SIGKILL');
    await until(() => page.locator('#instances tbody tr[data-instance]').count(), is(2), 8_000);
    expect(await page.locator(`#instances tr[data-instance] td.mono`).allTextContents()).not.toContain(
      undefined,
    );
    expect(await page.locator('#fleet-summary').textContent()).toMatch(/^2 instances/);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 50_000);
});
