import { afterEach, describe, expect, test } from 'bun:test';
import { closeAllClients, eventually, trackedClient, waitForState } from './support.ts';

type TRawServer = ReturnType<typeof Bun.serve>;
let raw: TRawServer | undefined;
afterEach(() => {
  closeAllClients();
  raw?.stop(true);
  raw = undefined;
});

/** A bare Bun WebSocket server that answers `authenticate` with whatever `reply` sends. */
function rawServer(reply: (ws: Bun.ServerWebSocket<unknown>) => void): string {
  raw = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (req, srv) => (srv.upgrade(req, { data: {} }) ? undefined : new Response('no', { status: 400 })),
    websocket: {
      message(ws, message) {
        if (typeof message === 'string' && JSON.parse(message).event === 'authenticate') reply(ws);
      },
    },
  });
  return `ws://127.0.0.1:${raw.port}/ws`;
}

describe('frames the client cannot use', () => {
  test('garbage from the server is reported, never thrown, and the connection stays', async () => {
    const url = rawServer((ws) => {
      ws.send('not json at all');
      ws.send('[1,2,3]');
      ws.send('"a string"');
      ws.send('{"data":{"no":"event"}}');
      ws.send('{"event":42}');
      ws.send('{"event":""}');
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send('{"event":"connected","data":{"userId":"no id"}}');
      ws.send(JSON.stringify({ event: 'connected', data: { id: 'c-1', userId: 'u', time: 'now' } }));
      ws.send(JSON.stringify({ event: 'news', data: { ok: true } }));
      ws.send(JSON.stringify({ event: 'join', data: { rooms: ['nobody asked'] } }));
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (error: unknown) => unhandled.push(error);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { client, errors } = trackedClient<{ news: { ok: boolean } }>(url);
      const news: unknown[] = [];
      client.on('news', (data) => news.push(data));
      const info = await client.ready;
      expect(info).toEqual({ id: 'c-1', userId: 'u', time: 'now', encrypted: false });
      await eventually(() => news.length === 1, 2_000, 'the valid event');
      expect(news).toEqual([{ ok: true }]);
      expect(errors.map((e) => e.code)).toEqual(Array(8).fill('BAD_FRAME'));
      expect(errors[0]?.details).toEqual({ raw: 'not json at all' });
      expect(client.state).toBe('connected');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('an encrypted frame for a client that did not negotiate encryption is reported', async () => {
    const url = rawServer((ws) => {
      ws.send(JSON.stringify({ event: 'connected', data: { id: 'c-2', time: 'now' } }));
      ws.send(JSON.stringify({ event: 'encrypted', data: { iv: 'x', ct: 'y' } }));
    });
    const { client, errors } = trackedClient(url);
    await client.ready;
    await eventually(() => errors.length === 1, 2_000, 'report');
    expect(errors[0]?.code).toBe('DECRYPT_FAILED');
    expect(client.state).toBe('connected');
  });

  test('a server that never answers authenticate: the attempt is abandoned after connectTimeout', async () => {
    const url = rawServer(() => {});
    const { client } = trackedClient(url, { connectTimeout: 100 });
    const change = await waitForState(client, 'reconnecting', 2_000);
    expect(change.close).toEqual({ code: 4000, reason: 'connect timeout' });
  });
});
