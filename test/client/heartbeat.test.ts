import { afterEach, describe, expect, test } from 'bun:test';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, recordingWebSocket, trackedClient, waitForState } from './support.ts';

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

const heartbeats = (sent: string[]) => sent.filter((frame) => frame === '{"event":"heartbeat"}').length;

describe('heartbeat', () => {
  test('keeps an idle connection alive well past the server heartbeatTimeout', async () => {
    server = await startServer({ heartbeatInterval: 100, heartbeatTimeout: 300 });
    const wire = recordingWebSocket();
    const { client, states } = trackedClient(server.url, {
      heartbeatInterval: 100,
      WebSocket: wire.WebSocket,
    });
    const { id } = await client.ready;

    await Bun.sleep(1_000); // more than three heartbeatTimeouts
    expect(client.state).toBe('connected');
    expect(client.connection?.id).toBe(id);
    expect(server.helper.getClients({ id })?.state).toBe('authenticated');
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(wire.opened).toBe(1);
    expect(heartbeats(wire.sent)).toBeGreaterThanOrEqual(5);
  });

  test('without heartbeats (heartbeatInterval: 0) the server closes with 4002 and the client reconnects', async () => {
    server = await startServer({ heartbeatInterval: 50, heartbeatTimeout: 200 });
    const wire = recordingWebSocket();
    const { client } = trackedClient(server.url, { heartbeatInterval: 0, WebSocket: wire.WebSocket });
    const first = await client.ready;
    const change = await waitForState(client, 'reconnecting', 2_000);
    expect(change.close?.code).toBe(4002);
    await waitForState(client, 'connected', 2_000);
    expect(client.connection?.id).not.toBe(first.id);
    expect(heartbeats(wire.sent)).toBe(0);
  });

  test('starts only after authentication and stops when the client closes', async () => {
    server = await startServer({ authTimeout: 2_000 });
    const wire = recordingWebSocket();
    let release: () => void = () => {};
    const { client } = trackedClient(server.url, {
      heartbeatInterval: 20,
      WebSocket: wire.WebSocket,
      // Holds authentication back for a while: no heartbeats in the meantime.
      auth: () => new Promise((resolve) => (release = () => resolve({ token: 'ok' }))),
    });
    await Bun.sleep(120);
    expect(wire.sent).toEqual([]);
    release();
    await client.ready;
    await Bun.sleep(120);
    const beforeClose = heartbeats(wire.sent);
    expect(beforeClose).toBeGreaterThanOrEqual(2);

    client.close();
    await Bun.sleep(120);
    expect(heartbeats(wire.sent)).toBe(beforeClose);
  });
});
