import { afterEach, describe, expect, test } from 'bun:test';
import { createClient, RoomcastClient, RoomcastClientError } from '../../src/client/index.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, recordingWebSocket, trackedClient } from './support.ts';

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

describe('connecting and authenticating', () => {
  test('authenticates on open and resolves ready with the server-assigned id, userId and time', async () => {
    server = await startServer();
    const { client, states, errors } = trackedClient(server.url, { auth: { token: 'ok', user: 'alice' } });
    const announced: unknown[] = [];
    client.on('connected', (info) => announced.push(info));

    const info = await client.ready;
    expect(info.userId).toBe('alice');
    expect(info.encrypted).toBe(false);
    expect(Number.isNaN(Date.parse(info.time))).toBe(false);
    // The id is the one the server gave this connection.
    const serverSide = server.helper.getClients({ id: info.id });
    expect(serverSide?.userId).toBe('alice');
    expect(serverSide?.state).toBe('authenticated');

    expect(client.state).toBe('connected');
    expect(client.connection).toEqual(info);
    expect(announced).toEqual([info]);
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(errors).toEqual([]);
  });

  test('createClient is the factory form of new RoomcastClient', async () => {
    server = await startServer();
    const client = createClient(server.url, { auth: { token: 'ok' } });
    try {
      expect(client).toBeInstanceOf(RoomcastClient);
      expect((await client.ready).userId).toBe('u1');
    } finally {
      client.close();
    }
  });

  test('an auth function is called again before every reconnect', async () => {
    server = await startServer();
    let calls = 0;
    const { client } = trackedClient(server.url, {
      auth: async () => ({ token: 'ok', user: `user-${++calls}` }),
    });
    const first = await client.ready;
    expect(first.userId).toBe('user-1');

    const second = new Promise((resolve) => client.once('connected', resolve));
    server.helper.getClients({ id: first.id })!.socket.close(4002, 'test');
    expect(await second).toMatchObject({ userId: 'user-2' });
    expect(calls).toBe(2);
  });

  test('refused auth (4003): disconnected with the code, ready rejects, and no reconnect', async () => {
    server = await startServer();
    const wire = recordingWebSocket();
    const { client, errors } = trackedClient(server.url, {
      auth: { token: 'wrong' },
      WebSocket: wire.WebSocket,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });

    const failure = await client.ready.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RoomcastClientError);
    expect((failure as RoomcastClientError).code).toBe('REFUSED');
    expect(client.state).toBe('disconnected');
    expect(client.lastClose?.code).toBe(4003);
    // The server's own error event reached the application too.
    expect(errors.find((e) => e.code === 'SERVER_ERROR')?.details).toMatchObject({
      code: 'AUTH_FAILED',
      closeCode: 4003,
    });

    // With a 10 ms backoff, a retry would have happened many times over by now.
    await Bun.sleep(250);
    expect(wire.opened).toBe(1);
    expect(client.state).toBe('disconnected');
    await expect(client.join('lobby')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('reconnect() tries again after a refusal when the application asks', async () => {
    server = await startServer();
    let token = 'wrong';
    const { client } = trackedClient(server.url, { auth: () => ({ token }) });
    await expect(client.ready).rejects.toMatchObject({ code: 'REFUSED' });

    token = 'ok';
    const info = await client.reconnect();
    expect(info.userId).toBe('u1');
    expect(client.state).toBe('connected');
  });

  test('reconnectOnRefusal: true keeps retrying after 4003 until auth succeeds', async () => {
    server = await startServer();
    let attempts = 0;
    const { client, states } = trackedClient(server.url, {
      reconnectOnRefusal: true,
      auth: () => ({ token: ++attempts < 3 ? 'wrong' : 'ok' }),
    });
    await client.ready;
    expect(attempts).toBe(3);
    const closes = states.filter((s) => s.state === 'reconnecting').map((s) => s.close?.code);
    expect(closes).toEqual([4003, 4003]);
  });

  test('an auth timeout (4001) is retried', async () => {
    server = await startServer({ authTimeout: 100 });
    let calls = 0;
    const { client, states } = trackedClient(server.url, {
      // The first answer comes too late for the server's auth timer.
      auth: async () => {
        if (++calls === 1) await Bun.sleep(400);
        return { token: 'ok' };
      },
    });
    await client.ready;
    expect(states.find((s) => s.state === 'reconnecting')?.close?.code).toBe(4001);
    expect(client.state).toBe('connected');
  });

  test('an auth function that throws is reported and the attempt is retried', async () => {
    server = await startServer();
    let calls = 0;
    const { client, errors } = trackedClient(server.url, {
      auth: () => {
        if (++calls === 1) throw new Error('token service down');
        return { token: 'ok' };
      },
    });
    await client.ready;
    expect(calls).toBe(2);
    expect(errors[0]?.code).toBe('AUTH_UNAVAILABLE');
    expect(errors[0]?.message).toContain('token service down');
  });

  test('autoConnect: false waits for connect(); close() before that rejects ready', async () => {
    server = await startServer();
    const { client, states } = trackedClient(server.url, { autoConnect: false });
    await Bun.sleep(50);
    expect(client.state).toBe('disconnected');
    expect(states).toEqual([]);
    const info = await client.connect();
    expect(await client.ready).toEqual(info);
    expect(await client.connect()).toEqual(info); // already connected: same session

    const idle = trackedClient(server.url, { autoConnect: false }).client;
    idle.close();
    await expect(idle.ready).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('close() closes the socket with the given code and stops for good', async () => {
    server = await startServer();
    const { client, states } = trackedClient(server.url);
    const { id } = await client.ready;
    const disconnects: unknown[] = [];
    client.on('disconnect', (info) => disconnects.push(info));

    client.close(4100, 'bye');
    expect(client.state).toBe('disconnected');
    expect(client.lastClose).toEqual({ code: 4100, reason: 'bye' });
    expect(disconnects).toEqual([{ code: 4100, reason: 'bye', willReconnect: false }]);
    await eventually(() => server!.helper.getClients({ id }) === undefined, 2_000, 'server-side cleanup');
    await Bun.sleep(100);
    expect(states.at(-1)?.state).toBe('disconnected');
    expect(server.helper.getClients().size).toBe(0);
  });

  test('connect() after close() starts a new session', async () => {
    server = await startServer();
    const { client } = trackedClient(server.url);
    const first = await client.ready;
    client.close();
    const second = await client.connect();
    expect(second.id).not.toBe(first.id);
    expect(client.state).toBe('connected');
  });

  test('errors reported with no onError and no error listener go to console.error', async () => {
    server = await startServer();
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      const client = new RoomcastClient(server.url, {
        auth: { token: 'ok' },
        maxQueueSize: 0,
        autoConnect: false,
      });
      expect(client.emit('chat', 1)).toBe(false);
      client.close();
    } finally {
      console.error = original;
    }
    expect(logged.length).toBe(1);
    expect(logged[0]?.[1]).toMatchObject({ code: 'QUEUE_OVERFLOW' });
  });
});
