import { afterEach, describe, expect, test } from 'bun:test';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, eventually, messageLog, trackedClient } from './support.ts';

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

describe('outbound queue', () => {
  test('messages beyond maxQueueSize are dropped and reported; the rest are sent in order', async () => {
    const log = messageLog();
    server = await startServer({ messageHandler: log.messageHandler });
    const { client, errors } = trackedClient(server.url, { autoConnect: false, maxQueueSize: 2 });
    expect(client.emit('n', 1)).toBe(true);
    expect(client.emit('n', 2)).toBe(true);
    expect(client.emit('n', 3)).toBe(false);
    expect(client.queued).toBe(2);
    expect(errors.map((e) => e.code)).toEqual(['QUEUE_OVERFLOW']);
    expect(errors[0]?.details).toEqual({ event: 'n' });

    const { id } = await client.connect();
    expect(client.emit('n', 4)).toBe(true); // connected: straight out, after the queued ones
    await eventually(() => log.messages.length === 3, 2_000, 'messages');
    expect(log.messages.map((m) => [m.clientId, m.data])).toEqual([
      [id, 1],
      [id, 2],
      [id, 4],
    ]);
  });

  test('maxQueueSize: 0 reports every message sent while offline', async () => {
    server = await startServer();
    const { client, errors } = trackedClient(server.url, { autoConnect: false, maxQueueSize: 0 });
    expect(client.emit('a')).toBe(false);
    expect(client.emit('b')).toBe(false);
    expect(errors.map((e) => e.code)).toEqual(['QUEUE_OVERFLOW', 'QUEUE_OVERFLOW']);
  });

  test('close() with queued messages reports how many were discarded', async () => {
    server = await startServer();
    const { client, errors } = trackedClient(server.url, { autoConnect: false });
    client.emit('a');
    client.emit('b');
    client.close();
    expect(client.queued).toBe(0);
    expect(errors.map((e) => [e.code, e.details])).toEqual([['QUEUE_DISCARDED', { dropped: 2 }]]);
  });
});
