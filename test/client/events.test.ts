import { afterEach, describe, expect, test } from 'bun:test';
import type { IWebSocketServerOptions } from '../../src/server/options.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, messageLog, trackedClient } from './support.ts';

interface ServerEvents {
  chat: { from: string; text: string };
  tick: number;
}
interface ClientEvents {
  chat: { text: string };
  ping: undefined;
}

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

/** A server whose messageHandler echoes `chat` back to the sender. */
async function echoServer(extra: Omit<Partial<IWebSocketServerOptions>, 'server'> = {}) {
  const log = messageLog();
  server = await startServer({
    ...extra,
    messageHandler: (opts) => {
      log.messageHandler(opts);
      const { clientId, message } = opts;
      if (message.event === 'chat') {
        const { text } = message.data as { text: string };
        server!.helper.sendToClient({ clientId, event: 'chat', data: { from: clientId, text } });
      }
    },
  });
  return log;
}

describe('typed events', () => {
  test('emit reaches the server; on receives what the server sends', async () => {
    const log = await echoServer();
    const { client } = trackedClient<ServerEvents, ClientEvents>(server!.url);
    const { id } = await client.ready;
    const received: ServerEvents['chat'][] = [];
    client.on('chat', (data) => received.push(data));

    expect(client.emit('chat', { text: 'hello' })).toBe(true);
    client.emit('ping');
    await eventually(() => received.length === 1, 2_000, 'echo');
    expect(received).toEqual([{ from: id, text: 'hello' }]);
    expect(log.messages).toEqual([
      { clientId: id, event: 'chat', data: { text: 'hello' } },
      { clientId: id, event: 'ping', data: undefined },
    ]);
  });

  test('room and broadcast deliveries arrive as events', async () => {
    server = await startServer({ validateRoomFn: ({ rooms }) => rooms });
    const { client } = trackedClient<ServerEvents>(server.url);
    await client.ready;
    await client.join('clock');
    const ticks: number[] = [];
    client.on('tick', (n) => ticks.push(n));
    server.helper.sendToRoom({ room: 'clock', event: 'tick', data: 1 });
    server.helper.broadcast({ event: 'tick', data: 2 });
    server.helper.send({ destination: 'clock', payload: { topic: 'tick', data: 3 } });
    await eventually(() => ticks.length === 3, 2_000, 'ticks');
    expect(ticks).toEqual([1, 2, 3]);
  });

  test('once fires a single time; off and the returned unsubscribe stop delivery', async () => {
    server = await startServer();
    const { client } = trackedClient<ServerEvents>(server.url);
    const { id } = await client.ready;
    const onceSeen: number[] = [];
    const onSeen: number[] = [];
    const offSeen: number[] = [];
    client.once('tick', (n) => onceSeen.push(n));
    const unsubscribe = client.on('tick', (n) => onSeen.push(n));
    const removed = (n: number) => offSeen.push(n);
    client.on('tick', removed);
    client.off('tick', removed);

    server.helper.sendToClient({ clientId: id, event: 'tick', data: 1 });
    await eventually(() => onSeen.length === 1, 2_000, 'first tick');
    unsubscribe();
    const later: number[] = [];
    client.on('tick', (n) => later.push(n));
    server.helper.sendToClient({ clientId: id, event: 'tick', data: 2 });
    await eventually(() => later.length === 1, 2_000, 'second tick');
    expect(onceSeen).toEqual([1]);
    expect(onSeen).toEqual([1]);
    expect(offSeen).toEqual([]);

    // off without a listener removes every listener of the event.
    client.off('tick');
    server.helper.sendToClient({ clientId: id, event: 'tick', data: 3 });
    await Bun.sleep(50);
    expect(later).toEqual([2]);
  });

  test('error events from the server reach onError and on("error")', async () => {
    server = await startServer();
    const { client, errors } = trackedClient(server.url);
    const { id } = await client.ready;
    const heard: unknown[] = [];
    client.on('error', (error) => heard.push(error.code));
    server.helper.sendToClient({
      clientId: id,
      event: 'error',
      data: { message: 'quota exceeded', code: 429 },
    });
    await eventually(() => errors.length === 1, 2_000, 'error');
    expect(errors[0]?.code).toBe('SERVER_ERROR');
    expect(errors[0]?.message).toBe('quota exceeded');
    expect(errors[0]?.details).toEqual({ message: 'quota exceeded', code: 429 });
    expect(heard).toEqual(['SERVER_ERROR']);
    expect(client.state).toBe('connected');
  });

  test('a throwing listener is reported and does not stop the other listeners', async () => {
    server = await startServer();
    const { client, errors } = trackedClient<ServerEvents>(server.url);
    const { id } = await client.ready;
    const seen: number[] = [];
    client.on('tick', () => {
      throw new Error('listener bug');
    });
    client.on('tick', (n) => seen.push(n));
    server.helper.sendToClient({ clientId: id, event: 'tick', data: 7 });
    await eventually(() => seen.length === 1, 2_000, 'tick');
    expect(errors.map((e) => e.code)).toEqual(['LISTENER_FAILED']);
    expect(errors[0]?.message).toContain('listener bug');
    expect(client.state).toBe('connected');
  });

  test('reserved names cannot be emitted and unserializable data throws at the call', async () => {
    server = await startServer();
    const { client } = trackedClient(server.url, { autoConnect: false });
    for (const name of ['authenticate', 'join', 'heartbeat', 'encrypted', 'ws:history', '']) {
      expect(() => client.emit(name as never)).toThrow(TypeError);
    }
    expect(() => client.emit('big', 10n)).toThrow();
    expect(client.queued).toBe(0);
  });
});
