import { afterEach, describe, expect, test } from 'bun:test';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import type { IHistoryPolicy } from '../../src/history/types.ts';
import { WebSocketRequestError } from '../../src/server/request-error.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';

// Every byte the server sends to an encrypted client after `connected`, recorded on the wire:
// publications of every kind, answers to every kind of request, errors, acknowledgements,
// presence events and the token refresh. Nothing may be readable.

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

const SECRET = 's3cr3t';
const OUTER_FIELDS = new Set(['event', 'data', 'id', 'room', 'offset', 'epoch']);
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 100, ttl: 60 } : null;

async function encryptedServer(nativeCipher: boolean) {
  const encryption = await createEcdhEncryption({ nativeCipher });
  server = await startServer({
    requireEncryption: true,
    handshakeFn: encryption.handshakeFn,
    outboundTransformer: encryption.outboundTransformer,
    clientDisconnectedFn: ({ clientId }) => {
      encryption.forget(clientId);
    },
    // Short-lived credentials, so the server asks for a refresh while the test runs.
    authenticateFn: (data) =>
      data.token === 'ok' ? { userId: String(data.user ?? 'u1'), expiresAt: Date.now() + 2_400 } : null,
    tokenRefreshLead: 1_200,
    validateRoomFn: ({ rooms }) => rooms,
    historyFn,
    presenceFn: ({ room }) => room.startsWith('p-'),
    messageHandler: ({ message }) => {
      if (message.event === 'refuse') throw new WebSocketRequestError('FORBIDDEN', `no ${SECRET} for you`);
      return { echo: message.data };
    },
  });
  return server;
}

describe('an encrypted connection shows nothing in clear after its handshake', () => {
  for (const nativeCipher of [true, false]) {
    test(`every server frame after connected is ciphertext (${nativeCipher ? 'native' : 'WebCrypto'} cipher)`, async () => {
      const { helper } = await encryptedServer(nativeCipher);
      const wire = recordingWebSocket();
      const { client, errors } = trackedClient<Record<string, unknown>>(server!.url, {
        encryption: true,
        WebSocket: wire.WebSocket,
        auth: { token: 'ok', user: 'alice' },
      });
      const info = await client.ready;
      expect(info.encrypted).toBe(true);
      const got: string[] = [];
      client.on('note', (data) => {
        got.push(String((data as { text: string }).text));
      });

      // Join answers, presence answers and events, history pages, replies, errors.
      expect(await client.join(['h-room', 'p-room', 'plain'])).toEqual(['h-room', 'p-room', 'plain']);
      await client.subscribePresence('p-room');
      const other = trackedClient(server!.url, { encryption: true, auth: { token: 'ok', user: 'bob' } });
      await other.client.ready;
      await other.client.join('p-room'); // a presence event to alice
      expect((await client.presence('p-room')).members.length).toBe(2);
      for (let n = 0; n < 3; n++) {
        helper.send({ destination: 'h-room', payload: { topic: 'note', data: { text: `${SECRET}-h${n}` } } });
      }
      await eventually(() => got.length === 3, 3_000, 'history room publications');
      const page = await client.history('h-room');
      expect(page.publications.map((p) => (p.data as { text: string }).text)).toEqual([
        `${SECRET}-h0`,
        `${SECRET}-h1`,
        `${SECRET}-h2`,
      ]);
      expect(await client.request('ask', { q: SECRET })).toEqual({ echo: { q: SECRET } });
      await expect(client.request('refuse', {})).rejects.toMatchObject({ serverCode: 'FORBIDDEN' });
      await expect(client.history('not-joined')).rejects.toMatchObject({ serverCode: 'NOT_IN_ROOM' });

      // Every delivery path: direct, user, room, broadcast, acknowledged, cross-path send().
      helper.sendToClient({ clientId: info.id, event: 'note', data: { text: `${SECRET}-direct` } });
      helper.sendToUser({ userId: 'alice', event: 'note', data: { text: `${SECRET}-user` } });
      helper.sendToRoom({ room: 'plain', event: 'note', data: { text: `${SECRET}-room` } });
      helper.sendToRoom({ room: info.id, event: 'note', data: { text: `${SECRET}-idroom` } });
      helper.broadcast({ event: 'note', data: { text: `${SECRET}-all` } });
      helper.send({ destination: info.id, payload: { topic: 'note', data: { text: `${SECRET}-send` } } });
      await helper.sendToClient({
        clientId: info.id,
        event: 'note',
        data: { text: `${SECRET}-ack` },
        ack: true,
      });
      expect(await client.leave('plain')).toEqual(['plain']);
      await eventually(() => got.length === 10, 3_000, 'every direct delivery');

      // The server's refresh request and its answer to ours.
      await eventually(() => refreshes(wire.sent) > 0, 4_000, 'refresh');
      await Bun.sleep(100);

      expect(errors).toEqual([]);
      const frames = wire.received.map((raw) => JSON.parse(raw) as { event: string; data: unknown });
      expect(frames[0]!.event).toBe('connected');
      const after = frames.slice(1);
      // connected, 3 join answer + presence subscribe + presence event + presence answer, ... : at least 20.
      expect(after.length).toBeGreaterThan(20);
      expect(after.filter((frame) => frame.event !== 'encrypted')).toEqual([]);
      expect(wire.received.some((raw) => raw.includes(SECRET))).toBe(false);
      // Beside the ciphertext only the documented outer fields: a request id, a history position.
      for (const frame of after as Array<Record<string, unknown>>) {
        expect(Object.keys(frame).filter((key) => !OUTER_FIELDS.has(key))).toEqual([]);
        expect(Object.keys(frame.data as object).sort()).toEqual(['ct', 'iv']);
      }
    });
  }
});

function refreshes(sent: string[]): number {
  return sent.filter((raw) => raw.includes('"ws:refresh"')).length;
}
