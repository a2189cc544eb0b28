import { afterEach, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { backoffDelay } from '../../src/client/backoff.ts';
import { freePort } from '../support/redis-server.ts';
import {
  closeAllClients,
  eventually,
  type IFixedPortServer,
  messageLog,
  recordingWebSocket,
  startServerOnPort,
  trackedClient,
  waitForState,
} from './support.ts';

interface Chat {
  chat: { text: string };
}

const servers = new Set<IFixedPortServer>();
const processes = new Set<Subprocess>();

afterEach(async () => {
  closeAllClients();
  for (const server of servers) await server.stop();
  servers.clear();
  for (const proc of processes) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  processes.clear();
});

async function serve(port: number, opts: Parameters<typeof startServerOnPort>[1] = {}) {
  const server = await startServerOnPort(port, opts);
  servers.add(server);
  return server;
}

async function stopServer(server: IFixedPortServer) {
  servers.delete(server);
  await server.stop();
}

const allowAllRooms = { validateRoomFn: ({ rooms }: { rooms: string[] }) => rooms };

describe('reconnecting', () => {
  test('after the server closes the socket (4002): new session, rooms re-joined, queued messages delivered', async () => {
    const log = messageLog();
    const server = await serve(0, { ...allowAllRooms, messageHandler: log.messageHandler });
    const { client, errors } = trackedClient<Chat>(server.url);
    const disconnects: unknown[] = [];
    client.on('disconnect', (info) => disconnects.push(info));
    const first = await client.ready;
    expect(await client.join(['lobby', 'news'])).toEqual(['lobby', 'news']);

    const reconnecting = waitForState(client, 'reconnecting');
    server.helper.getClients({ id: first.id })!.socket.close(4002, 'Heartbeat timeout');
    const change = await reconnecting;
    expect(change.close).toEqual({ code: 4002, reason: 'Heartbeat timeout' });
    expect(change.attempt).toBe(1);
    expect(disconnects).toEqual([{ code: 4002, reason: 'Heartbeat timeout', willReconnect: true }]);

    // Sent while offline: queued, not lost.
    for (const text of ['one', 'two', 'three']) expect(client.emit('chat', { text })).toBe(true);
    expect(client.queued).toBe(3);

    const second = await waitForState(client, 'connected').then(() => client.connection!);
    expect(second.id).not.toBe(first.id);
    expect(client.queued).toBe(0);
    await eventually(() => log.messages.length === 3, 2_000, 'queued messages');
    expect(log.messages).toEqual(
      ['one', 'two', 'three'].map((text) => ({ clientId: second.id, event: 'chat', data: { text } })),
    );
    await eventually(
      () => server.helper.getClientsByRoom({ room: 'news' }).some((c) => c.id === second.id),
      2_000,
      're-join',
    );
    expect(server.helper.getClientsByRoom({ room: 'lobby' }).map((c) => c.id)).toEqual([second.id]);
    expect([...client.joinedRooms]).toEqual(['lobby', 'news']);
    expect(errors).toEqual([]);
  });

  test('after an in-process server restart on the same port (1001), with queued messages and rooms', async () => {
    const before = await serve(0, allowAllRooms);
    const { port } = before;
    const { client, states } = trackedClient<Chat>(before.url);
    await client.ready;
    await client.join('lobby');

    const reconnecting = waitForState(client, 'reconnecting');
    await stopServer(before);
    expect((await reconnecting).close?.code).toBe(1001);
    client.emit('chat', { text: 'while down' });
    // Let a few attempts fail against the closed port.
    await eventually(() => states.filter((s) => s.state === 'reconnecting').length >= 3, 3_000, 'retries');

    const log = messageLog();
    const after = await serve(port, { ...allowAllRooms, messageHandler: log.messageHandler });
    await waitForState(client, 'connected');
    const { id } = client.connection!;
    expect(after.helper.getClients({ id })).toBeDefined();
    await eventually(() => log.messages.length === 1, 2_000, 'queued message');
    expect(log.messages[0]).toEqual({ clientId: id, event: 'chat', data: { text: 'while down' } });
    await eventually(
      () => after.helper.getClientsByRoom({ room: 'lobby' }).some((c) => c.id === id),
      2_000,
      're-join',
    );
  });

  test('after the server process is killed (1006) and started again on the same port', async () => {
    const port = await freePort();
    const startProcess = async () => {
      const proc = Bun.spawn(
        [process.execPath, 'run', `${import.meta.dir}/fixtures/server-process.ts`, String(port)],
        {
          stdout: 'pipe',
          stderr: 'inherit',
        },
      );
      processes.add(proc);
      const reader = proc.stdout.getReader();
      const deadline = Date.now() + 5_000;
      let output = '';
      while (!output.includes('ready')) {
        if (Date.now() > deadline) throw new Error('server process did not start');
        const { value, done } = await reader.read();
        if (done) throw new Error(`server process exited: ${output}`);
        output += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      return proc;
    };
    const serverLog = async (room: string) =>
      (await (await fetch(`http://127.0.0.1:${port}/log?room=${room}`)).json()) as {
        messages: Array<{ clientId: string; event: string; data: unknown }>;
        members: string[];
      };

    const first = await startProcess();
    const { client, states } = trackedClient<Chat>(`ws://127.0.0.1:${port}/ws`);
    await client.ready;
    expect(await client.join(['alpha', 'beta'])).toEqual(['alpha', 'beta']);

    const reconnecting = waitForState(client, 'reconnecting');
    first.kill('SIGKILL');
    await first.exited;
    processes.delete(first);
    expect((await reconnecting).close?.code).toBe(1006);
    client.emit('chat', { text: 'after the crash' });
    await eventually(() => states.filter((s) => s.state === 'reconnecting').length >= 2, 3_000, 'retries');

    await startProcess();
    await waitForState(client, 'connected');
    const { id } = client.connection!;
    await eventually(() => client.queued === 0, 2_000, 'flush');
    // The server handles the re-join and the message asynchronously: poll its log.
    let seen = await serverLog('beta');
    for (let i = 0; i < 100 && !(seen.members.length === 1 && seen.messages.length === 1); i++) {
      await Bun.sleep(20);
      seen = await serverLog('beta');
    }
    expect(seen.members).toEqual([id]);
    expect(seen.messages).toEqual([{ clientId: id, event: 'chat', data: { text: 'after the crash' } }]);
    // Every retry waited within the configured bounds.
    for (const change of states.filter((s) => s.state === 'reconnecting')) {
      expect(change.delay).toBeGreaterThanOrEqual(0);
      expect(change.delay).toBeLessThanOrEqual(200);
    }
  });

  test('reconnect: false stops after the first close', async () => {
    const server = await serve(0);
    const { client } = trackedClient(server.url, { reconnect: false });
    const { id } = await client.ready;
    const disconnected = waitForState(client, 'disconnected');
    server.helper.getClients({ id })!.socket.close(4002, 'gone');
    expect((await disconnected).close?.code).toBe(4002);
    await Bun.sleep(100);
    expect(client.state).toBe('disconnected');
  });

  test('gives up after reconnect.maxAttempts and reports RECONNECT_EXHAUSTED', async () => {
    const port = await freePort(); // nothing listens here
    const wire = recordingWebSocket();
    const { client, errors } = trackedClient(`ws://127.0.0.1:${port}/ws`, {
      WebSocket: wire.WebSocket,
      reconnect: { initialDelay: 5, maxDelay: 20, maxAttempts: 2 },
    });
    await expect(client.ready).rejects.toMatchObject({ code: 'RECONNECT_EXHAUSTED' });
    expect(wire.opened).toBe(3); // the first attempt and two retries
    expect(errors.map((e) => e.code)).toEqual(['RECONNECT_EXHAUSTED']);
    expect(client.state).toBe('disconnected');
  });

  test('reconnect() while connected replaces the session at once', async () => {
    const server = await serve(0, allowAllRooms);
    const { client } = trackedClient(server.url);
    const first = await client.ready;
    await client.join('room-x');
    const second = await client.reconnect();
    expect(second.id).not.toBe(first.id);
    await eventually(
      () =>
        server.helper
          .getClientsByRoom({ room: 'room-x' })
          .map((c) => c.id)
          .join() === second.id,
      2_000,
      're-join after reconnect()',
    );
  });
});

describe('backoff', () => {
  const policy = { initialDelay: 100, maxDelay: 1_000, factor: 2, jitter: 0.5, maxAttempts: Infinity };

  test('grows exponentially up to the cap', () => {
    const noJitter = () => 0;
    expect([0, 1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, policy, noJitter))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
  });

  test('jitter removes at most the configured fraction', () => {
    expect(backoffDelay(3, policy, () => 1)).toBe(400);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(600);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(10, policy);
      expect(delay).toBeGreaterThanOrEqual(500);
      expect(delay).toBeLessThanOrEqual(1_000);
    }
  });
});
