import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import {
  BROWSER_BUNDLE_NAME,
  bundleClient,
  bundleRoomKeys,
  ROOM_KEYS_BUNDLE_NAME,
} from '../../scripts/measure-client-size.ts';
import { roomKeys } from '../../src/client/room-keys.ts';
import { launchChromium } from '../browser/demo-harness.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { sealedFrames, sealedServerOptions } from './support.ts';

// A real Chromium loads the browser files as they ship (the client bundle and the optional
// sealed-rooms file next to it), joins a sealed room of a real server beside a Bun SDK member,
// and reads what the server sealed once for both, across a rotation.

let browser: Browser;
let pages: ReturnType<typeof Bun.serve> | undefined;
let server: ITestServer | undefined;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  closeAllClients();
  pages?.stop(true);
  pages = undefined;
  await server?.stop();
  server = undefined;
});

function page(wsUrl: string): string {
  return `<!doctype html>
<title>loading</title>
<script type="module">
  import { createClient } from '/${BROWSER_BUNDLE_NAME}';
  import { roomKeys } from '/${ROOM_KEYS_BUNDLE_NAME}';
  const got = [];
  const client = createClient(${JSON.stringify(wsUrl)}, {
    auth: { token: 'ok', user: 'chromium' },
    encryption: true,
    roomKeys: roomKeys(),
  });
  client.on('note', (data) => { got.push(data.n); document.title = 'got:' + got.join(','); });
  client.on('error', (error) => { document.title = 'error:' + error.code + ':' + error.message; });
  const info = await client.ready;
  window.clientId = info.id;
  await client.join('secret:web');
  document.title = 'joined:' + info.encrypted;
</script>`;
}

describe('sealed rooms in Chromium', () => {
  test('the browser SDK with roomKeys() reads sealed frames beside a Bun member, across a rotation', async () => {
    server = await startServer(await sealedServerOptions());
    const clientCode = (await bundleClient()).code.replace(/\n\/\/# sourceMappingURL=.*$/, '');
    const roomKeysCode = (await bundleRoomKeys()).code;
    const html = page(server.url);
    pages = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(request) {
        const { pathname } = new URL(request.url);
        const js = { 'content-type': 'text/javascript' };
        if (pathname === '/') return new Response(html, { headers: { 'content-type': 'text/html' } });
        if (pathname === `/${BROWSER_BUNDLE_NAME}`) return new Response(clientCode, { headers: js });
        if (pathname === `/${ROOM_KEYS_BUNDLE_NAME}`) return new Response(roomKeysCode, { headers: js });
        return new Response('Not found', { status: 404 });
      },
    });
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${pages.port}/`);
    await tab.waitForFunction(
      () => document.title.startsWith('joined') || document.title.startsWith('error'),
      null,
      {
        timeout: 10_000,
      },
    );
    expect(await tab.title()).toBe('joined:true');

    const wire = recordingWebSocket();
    const bun = trackedClient<{ note: { n: number } }>(server.url, {
      encryption: true,
      roomKeys: roomKeys(),
      WebSocket: wire.WebSocket,
    });
    const got: number[] = [];
    bun.client.on('note', (data) => got.push(data.n));
    await bun.client.join('secret:web');
    const leaver = trackedClient(server.url, { encryption: true, roomKeys: roomKeys() });
    const leaverInfo = await leaver.client.ready;
    await leaver.client.join('secret:web');

    for (const n of [1, 2]) server.helper.sendToRoom({ room: 'secret:web', event: 'note', data: { n } });
    await tab.waitForFunction(() => document.title === 'got:1,2', null, { timeout: 10_000 });
    const generation = server.helper.roomKeys!.generation('secret:web');
    server.helper.leaveRoom({ clientId: leaverInfo.id, room: 'secret:web' });
    expect(server.helper.roomKeys!.generation('secret:web')).not.toBe(generation);
    server.helper.sendToRoom({ room: 'secret:web', event: 'note', data: { n: 3 } });
    await tab.waitForFunction(
      () => document.title.startsWith('got:1,2,3') || document.title.startsWith('error'),
      null,
      {
        timeout: 10_000,
      },
    );
    expect(await tab.title()).toBe('got:1,2,3');
    await eventually(() => got.length === 3, 5_000, 'the Bun member');
    expect(got).toEqual([1, 2, 3]);
    // Three messages, three encryptions: the browser and the Bun member got the same sealed bytes.
    expect(server.helper.roomKeys!.stats.sealed).toBe(3);
    expect(
      sealedFrames(wire.received)
        .map((f) => f.gen)
        .at(-1),
    ).toBe(server.helper.roomKeys!.generation('secret:web')!);
    expect(bun.errors).toEqual([]);
    await tab.close();
  }, 60_000);
});
