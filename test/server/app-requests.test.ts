import { afterEach, describe, expect, test } from 'bun:test';
import type { RoomcastClientError } from '../../src/client/index.ts';
import { WebSocketRequestError } from '../../src/server/request-error.ts';
import { closeAllClients, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';

/** Client → server request/response against a real server and the real SDK. */

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

async function connectedClient(opts: Parameters<typeof trackedClient>[1] = {}) {
  const tracked = trackedClient(server!.url, opts);
  await tracked.client.ready;
  return tracked;
}

function raw(url: string): Promise<{ ws: WebSocket; frames: Array<Record<string, unknown>> }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const frames: Array<Record<string, unknown>> = [];
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data));
      frames.push(frame);
      if (frame.event === 'connected') resolve({ ws, frames });
    };
    ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
  });
}

describe('request/response', () => {
  test('1 000 concurrent requests on one connection, answered out of order, each get their own answer', async () => {
    server = await startServer({
      limits: { messagesPerSecond: false, maxPendingRequests: 2_000 },
      messageHandler: async ({ message }) => {
        const { n } = message.data as { n: number };
        await Bun.sleep(Math.floor(Math.random() * 50)); // finish in a shuffled order
        return { n, square: n * n };
      },
    });
    const { client, errors } = await connectedClient();
    const order: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 1_000 }, (_, n) =>
        client.request('add', { n }).then((answer) => {
          order.push((answer as { n: number }).n);
          return answer as { n: number; square: number };
        }),
      ),
    );
    for (const [n, answer] of answers.entries()) expect(answer).toEqual({ n, square: n * n });
    // Out of order on the wire (otherwise the test would not prove the id matching).
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
    expect(errors).toEqual([]);
    expect(server.helper.getClients().values().next().value?.pendingRequests ?? 0).toBe(0);
  });

  test('a WebSocketRequestError becomes a typed error with its code; any other throw is INTERNAL with no detail', async () => {
    server = await startServer({
      messageHandler: ({ message }) => {
        if (message.event === 'forbidden') throw new WebSocketRequestError('FORBIDDEN', 'not yours');
        if (message.event === 'boom') throw new Error('secret stack detail');
        return Promise.reject(new Error('async secret'));
      },
    });
    const { client } = await connectedClient();
    const forbidden = (await client.request('forbidden').catch((e) => e)) as RoomcastClientError;
    expect(forbidden.code).toBe('SERVER_ERROR');
    expect(forbidden.serverCode).toBe('FORBIDDEN');
    expect(forbidden.message).toBe('not yours');
    for (const event of ['boom', 'later']) {
      const error = (await client.request(event).catch((e) => e)) as RoomcastClientError;
      expect(error.serverCode).toBe('INTERNAL');
      expect(error.message).toBe('The request failed');
      expect(JSON.stringify(error.details)).not.toContain('secret');
    }
  });

  test('a handler that never answers gives REQUEST_TIMEOUT; the connection keeps serving', async () => {
    server = await startServer({
      messageHandler: ({ message }) => (message.event === 'hang' ? new Promise(() => {}) : 'pong'),
    });
    const { client } = await connectedClient();
    const started = Date.now();
    const error = (await client
      .request('hang', undefined, { timeout: 200 })
      .catch((e) => e)) as RoomcastClientError;
    expect(error.code).toBe('REQUEST_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(await client.request('ping')).toBe('pong');
  });

  test('frames without an id get no reply (as before); emitted events still reach the handler', async () => {
    const seen: string[] = [];
    server = await startServer({
      messageHandler: ({ message }) => {
        seen.push(message.event);
        return 'ignored';
      },
    });
    const { ws, frames } = await raw(server.url);
    ws.send(JSON.stringify({ event: 'note', data: 1 }));
    ws.send(JSON.stringify({ event: 'ask', data: 2, id: 'a1' }));
    await Bun.sleep(100);
    expect(seen).toEqual(['note', 'ask']);
    expect(frames.slice(1)).toEqual([{ event: 'ws:reply', data: 'ignored', id: 'a1' }]);
    ws.close();
  });

  test('bad input: an oversized id is refused with INVALID_REQUEST; a flood past maxPendingRequests gets TOO_MANY_PENDING and others are served', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    server = await startServer({
      limits: { maxPendingRequests: 4, messagesPerSecond: false },
      messageHandler: async ({ message }) => {
        if (message.event === 'slow') await gate;
        return message.event;
      },
    });
    const { ws, frames } = await raw(server.url);
    ws.send(JSON.stringify({ event: 'x', id: 'i'.repeat(500) }));
    for (let n = 0; n < 10; n++) ws.send(JSON.stringify({ event: 'slow', id: `s${n}` }));
    await Bun.sleep(100);
    const answers = frames.slice(1);
    expect(answers[0]).toMatchObject({ event: 'error', data: { code: 'INVALID_REQUEST' } });
    expect(answers[0]?.id).toBeUndefined();
    const refused = answers.filter((f) => (f.data as { code?: string })?.code === 'TOO_MANY_PENDING');
    expect(refused.map((f) => f.id)).toEqual(['s4', 's5', 's6', 's7', 's8', 's9']);
    // Another client is served meanwhile.
    const other = await connectedClient();
    expect(await other.client.request('fast')).toBe('fast');
    release();
    await Bun.sleep(50);
    const replies = frames.filter((f) => f.event === 'ws:reply').map((f) => f.id);
    expect(replies).toEqual(['s0', 's1', 's2', 's3']);
    ws.close();
  });

  test('a request sent before the connection exists waits for it; a closed client rejects with CLOSED', async () => {
    server = await startServer({ messageHandler: () => 42 });
    const { client } = trackedClient(server.url);
    const answer = client.request('early');
    expect(await answer).toBe(42);
    client.close();
    expect(((await client.request('late').catch((e) => e)) as RoomcastClientError).code).toBe('CLOSED');
  });
});
