import { afterEach, describe, expect, test } from 'bun:test';
import { type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

let server: ITestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('passive heartbeat', () => {
  test('a silent authenticated client is closed with 4002 after heartbeatTimeout', async () => {
    server = await startServer({ heartbeatInterval: 50, heartbeatTimeout: 200 });
    const client = await TestClient.authenticated(server.url);
    const started = Date.now();
    const closed = await client.closedWithin(2_000);
    expect(closed.code).toBe(4002);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  test('heartbeats (or any frame) keep the client alive past heartbeatTimeout', async () => {
    server = await startServer({ heartbeatInterval: 50, heartbeatTimeout: 200 });
    const beating = await TestClient.authenticated(server.url);
    const chatting = await TestClient.authenticated(server.url);
    const silent = await TestClient.authenticated(server.url);
    const beat = setInterval(() => {
      beating.send({ event: 'heartbeat' });
      chatting.send({ event: 'chat', data: 1 });
    }, 60);
    try {
      expect((await silent.closedWithin(2_000)).code).toBe(4002);
      await Bun.sleep(400);
      expect(beating.closeInfo).toBeUndefined();
      expect(chatting.closeInfo).toBeUndefined();
    } finally {
      clearInterval(beat);
    }
  });

  test('the sweep leaves unauthenticated clients to the auth timer', async () => {
    server = await startServer({ heartbeatInterval: 30, heartbeatTimeout: 60, authTimeout: 400 });
    const client = await TestClient.connect(server.url);
    const closed = await client.closedWithin(2_000);
    expect(closed.code).toBe(4001);
  });
});
