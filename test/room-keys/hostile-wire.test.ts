import { afterEach, describe, expect, test } from 'bun:test';
import type { TWebSocketConstructor } from '../../src/client/index.ts';
import { roomKeys } from '../../src/client/room-keys.ts';
import { closeAllClients, errorCodes, eventually, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { sealedServerOptions } from './support.ts';

// Someone on the wire between a real server and the SDK (the client's WebSocket rewrites what it
// receives): replayed, tampered, moved and forged sealed-room frames are dropped and reported, and
// never reach a listener.

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

/** A WebSocket that hands the client, for each frame received, what `rewrite` makes of it. */
function rewritingWebSocket(rewrite: (raw: string) => string[]): TWebSocketConstructor {
  class Rewriting extends WebSocket {
    override set onmessage(handler: ((event: MessageEvent) => void) | null) {
      super.onmessage = handler
        ? (event: MessageEvent) => {
            if (typeof event.data !== 'string') return handler(event);
            for (const data of rewrite(event.data)) handler(new MessageEvent('message', { data }));
          }
        : null;
    }
    override get onmessage(): ((event: MessageEvent) => void) | null {
      return super.onmessage as ((event: MessageEvent) => void) | null;
    }
  }
  return Rewriting as unknown as TWebSocketConstructor;
}

const isSealed = (raw: string) => raw.startsWith('{"event":"ws:sealed"');

async function sealedMember(rewrite: (raw: string) => string[]) {
  const tracked = trackedClient<{ note: { n: number } }>(server!.url, {
    encryption: true,
    roomKeys: roomKeys(),
    WebSocket: rewritingWebSocket(rewrite),
  });
  const received: number[] = [];
  tracked.client.on('note', (data) => received.push(data.n));
  await tracked.client.ready;
  await tracked.client.join(['secret:w', 'secret:other']);
  return { ...tracked, received };
}

describe('sealed-room frames under attack on the wire', () => {
  test('a replayed frame is dropped (REPLAYED_FRAME); a tampered one does not open (DECRYPT_FAILED)', async () => {
    server = await startServer(await sealedServerOptions());
    let n = 0;
    const m = await sealedMember((raw) => {
      if (!isSealed(raw)) return [raw];
      n++;
      if (n === 1) return [raw, raw]; // the first one twice
      if (n === 2) {
        const frame = JSON.parse(raw);
        const ct: string = frame.data.ct;
        frame.data.ct = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
        return [JSON.stringify(frame)];
      }
      return [raw];
    });
    for (const k of [1, 2, 3]) server.helper.sendToRoom({ room: 'secret:w', event: 'note', data: { n: k } });
    await eventually(
      () => m.received.length === 2 && m.errors.length === 2,
      3_000,
      'two delivered, two refused',
    );
    expect(m.received).toEqual([1, 3]);
    expect(errorCodes(m.errors)).toEqual(['REPLAYED_FRAME', 'DECRYPT_FAILED']);
  });

  test('a frame moved to another room is not delivered; a forged key in clear is refused and not used', async () => {
    server = await startServer(await sealedServerOptions());
    // A key of the attacker's, and a frame sealed under it for the room.
    const rawKey = crypto.getRandomValues(new Uint8Array(32));
    const key = await crypto.subtle.importKey('raw', rawKey, 'AES-GCM', false, ['encrypt']);
    const iv = new Uint8Array(12);
    iv[11] = 1;
    const ct = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: new TextEncoder().encode('secret:w') },
      key,
      new TextEncoder().encode(JSON.stringify({ event: 'note', data: { n: 666 } })),
    );
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
    const forgedKey = JSON.stringify({
      event: 'ws:room-key',
      data: { room: 'secret:w', gen: 'forged.1', key: b64(rawKey) },
    });
    const forgedFrame = JSON.stringify({
      event: 'ws:sealed',
      data: { room: 'secret:w', gen: 'forged.1', iv: b64(iv), ct: b64(new Uint8Array(ct)) },
    });
    let first = true;
    const m = await sealedMember((raw) => {
      if (!isSealed(raw) || !first) return [raw];
      first = false;
      const moved = JSON.parse(raw);
      moved.data.room = 'secret:other';
      return [forgedKey, forgedFrame, JSON.stringify(moved), raw];
    });
    server.helper.sendToRoom({ room: 'secret:w', event: 'note', data: { n: 1 } });
    server.helper.sendToRoom({ room: 'secret:w', event: 'note', data: { n: 2 } });
    await eventually(() => m.received.length === 2, 3_000, 'the genuine frames');
    await Bun.sleep(100);
    expect(m.received).toEqual([1, 2]);
    // The key in clear was refused as a frame in clear; the forged and the moved frames wait for keys
    // that never come (the moved one: its generation belongs to another room), so they are not delivered.
    expect(errorCodes(m.errors)).toEqual(['PLAINTEXT_FRAME']);
  });
});
