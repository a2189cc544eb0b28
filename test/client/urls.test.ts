import { afterEach, describe, expect, test } from 'bun:test';
import { type IUrlContext, RoomcastClient } from '../../src/client/index.ts';
import { freePort } from '../support/redis-server.ts';
import {
  closeAllClients,
  errorCodes,
  eventually,
  type IFixedPortServer,
  startServerOnPort,
  trackedClient,
  waitForState,
} from './support.ts';

const servers = new Set<IFixedPortServer>();
afterEach(async () => {
  closeAllClients();
  for (const server of servers) await server.stop();
  servers.clear();
});

async function serve(port = 0) {
  const server = await startServerOnPort(port);
  servers.add(server);
  return server;
}

async function stop(server: IFixedPortServer) {
  servers.delete(server);
  await server.stop();
}

const clientsOn = (server: IFixedPortServer) => server.helper.getStats().clients;

describe('several server URLs', () => {
  test('a list: the first URL first; when that instance goes away the client moves to the next one', async () => {
    const a = await serve();
    const b = await serve();
    const { client } = trackedClient([a.url, b.url]);
    await client.ready;
    expect(client.url).toBe(a.url);
    expect(clientsOn(a)).toBe(1);
    expect(clientsOn(b)).toBe(0);

    const moved = waitForState(client, 'reconnecting').then(() => waitForState(client, 'connected'));
    await stop(a);
    await moved;
    expect(client.url).toBe(b.url);
    await eventually(() => clientsOn(b) === 1, 2_000, 'on b');
  });

  test('a list wraps around: attempts go a, b, a, b… while nothing answers', async () => {
    const dead = [`ws://127.0.0.1:${await freePort()}/ws`, `ws://127.0.0.1:${await freePort()}/ws`];
    const tried: string[] = [];
    const { client } = trackedClient(dead, {
      reconnect: { initialDelay: 5, maxDelay: 10, maxAttempts: 3 },
      // After each failed attempt (reconnecting… then disconnected), the URL that attempt used.
      onStateChange: ({ state }) => state !== 'connecting' && tried.push(client.url),
    });
    await expect(client.ready).rejects.toMatchObject({ code: 'RECONNECT_EXHAUSTED' });
    const [first, second] = dead as [string, string];
    expect(tried).toEqual([first, second, first, second]);
  });

  test('a function picks the URL of every attempt and is told the attempt number and the previous URL', async () => {
    const a = await serve();
    const b = await serve();
    const contexts: IUrlContext[] = [];
    const { client } = trackedClient(
      (context) => {
        contexts.push(context);
        return context.attempt % 2 === 0 ? a.url : new URL(b.url);
      },
      { autoConnect: false },
    );
    expect(client.url).toBe('');
    await client.connect();
    expect(client.url).toBe(a.url);
    await client.reconnect();
    expect(client.url).toBe(b.url);
    expect(clientsOn(b)).toBe(1);
    expect(contexts).toEqual([{ attempt: 0 }, { attempt: 1, previous: a.url }]);
  });

  test('a function that fails or returns a bad URL is reported (BAD_URL) and the client retries', async () => {
    const a = await serve();
    let calls = 0;
    const { client, errors } = trackedClient(() => {
      calls++;
      if (calls === 1) throw new Error('no instance known yet');
      if (calls === 2) return 'ftp://nowhere/ws';
      return a.url;
    });
    await client.ready;
    expect(calls).toBe(3);
    expect(errorCodes(errors)).toEqual(['BAD_URL', 'BAD_URL']);
    expect(errors[1]!.message).toContain('ws:// or wss://');
  });

  test('a bad list fails in the constructor; a single URL works as before', () => {
    const make = (url: unknown) => new RoomcastClient(url as string, { autoConnect: false });
    expect(() => make([])).toThrow(/url list must not be empty/);
    expect(() => make(['ws://ok.test/ws', 'nope'])).toThrow(/\[roomcast\] url/);
    expect(() => make(42)).toThrow(/\[roomcast\] url/);
    expect(make('http://ok.test/ws').url).toBe('ws://ok.test/ws');
    expect(make(['wss://one.test/ws', 'wss://two.test/ws']).url).toBe('wss://one.test/ws');
  });
});
