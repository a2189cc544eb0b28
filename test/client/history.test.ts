import { afterEach, describe, expect, test } from 'bun:test';
import type { IPublicationInfo, IRoomRecovery } from '../../src/client/index.ts';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import type { IHistoryPolicy } from '../../src/index.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import {
  closeAllClients,
  eventually,
  type RoomcastClientError,
  recordingWebSocket,
  trackedClient,
  waitForState,
} from './support.ts';

/** The SDK's history features against the real server (single-instance, in memory). */

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room.startsWith('h-') ? { size: 100, ttl: 60_000 } : null;

async function historyServer(extra: Parameters<typeof startServer>[0] = {}) {
  server = await startServer({ validateRoomFn: ({ rooms }) => rooms, historyFn, ...extra });
  return server;
}

const publish = (room: string, from: number, count: number) => {
  for (let n = from; n < from + count; n++) {
    server!.helper.send({ destination: room, payload: { topic: 'note', data: { n } } });
  }
};

function recording(options: Parameters<typeof trackedClient>[1] = {}) {
  const got = { notes: [] as number[], infos: [] as IPublicationInfo[], recoveries: [] as IRoomRecovery[] };
  const tracked = trackedClient(server!.url, { onRecovery: (r) => got.recoveries.push(r), ...options });
  tracked.client.on('note', (data, info) => {
    got.notes.push((data as { n: number }).n);
    if (info) got.infos.push(info);
  });
  return { ...tracked, got };
}

describe('history() against the server', () => {
  test('returns the retained publications with their offsets and the current position', async () => {
    await historyServer();
    const { client } = recording();
    await client.ready;
    await client.join('h-a');
    publish('h-a', 1, 5);
    await eventually(() => client.position('h-a')?.offset === 5, 2_000, 'five delivered');
    const { epoch } = client.position('h-a')!;

    const all = await client.history('h-a');
    expect(all).toEqual({
      offset: 5,
      epoch,
      publications: [1, 2, 3, 4, 5].map((n) => ({ offset: n, event: 'note', data: { n } })),
    });
    const newest = await client.history('h-a', { limit: 2, reverse: true });
    expect(newest.publications.map((p) => p.offset)).toEqual([5, 4]);
    const after = await client.history('h-a', { since: { offset: 3, epoch } });
    expect(after.publications.map((p) => p.offset)).toEqual([4, 5]);
  });

  test('ten requests at once: each gets its own answer (matched by id)', async () => {
    await historyServer();
    const { client } = recording();
    await client.ready;
    await client.join('h-a');
    publish('h-a', 1, 3);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => client.history('h-a', { limit: 1 + (i % 3) })),
    );
    expect(answers.map((a) => a.publications.length)).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1]);
  });

  test('refusals reject with the server code: not a member, no history, foreign epoch, bad shape', async () => {
    await historyServer();
    const { client, errors } = recording();
    await client.ready;
    await client.join(['h-a', 'plain']);
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (error: RoomcastClientError) => `${error.code}/${error.serverCode}`,
      );
    expect(await codeOf(client.history('h-other'))).toBe('SERVER_ERROR/NOT_IN_ROOM');
    expect(await codeOf(client.history('plain'))).toBe('SERVER_ERROR/HISTORY_UNAVAILABLE');
    expect(await codeOf(client.history('h-a', { since: { offset: 0, epoch: 'not-this-one' } }))).toBe(
      'SERVER_ERROR/UNRECOVERABLE_POSITION',
    );
    expect(await codeOf(client.history('h-a', { limit: -3 }))).toBe('SERVER_ERROR/INVALID_REQUEST');
    // Answers to history() are not also reported as connection errors.
    expect(errors).toEqual([]);
  });
});

describe('recovery against the server', () => {
  test('a dropped client re-joins with since and gets exactly what it missed, once, in order', async () => {
    await historyServer();
    const { client, got } = recording();
    const { id } = await client.ready;
    await client.join('h-a');
    publish('h-a', 1, 3);
    await eventually(() => got.notes.length === 3, 2_000, 'first three');

    const reconnecting = waitForState(client, 'reconnecting');
    server!.helper.getClients({ id })!.socket.close(4002, 'Heartbeat timeout');
    await reconnecting;
    publish('h-a', 4, 4); // while it is away
    await eventually(() => got.recoveries.length === 1, 3_000, 'recovery');
    expect(got.recoveries[0]).toMatchObject({ room: 'h-a', recovered: true, recoveredCount: 4 });
    publish('h-a', 8, 2);
    await eventually(() => got.notes.length === 9, 2_000, 'live again');
    expect(got.notes).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.infos.map((info) => info.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('encrypted: the position is on the outer frame; a recovery is decrypted and counted', async () => {
    const encryption = await createEcdhEncryption();
    await historyServer({
      requireEncryption: true,
      handshakeFn: encryption.handshakeFn,
      outboundTransformer: encryption.outboundTransformer,
      clientDisconnectedFn: ({ clientId }) => {
        encryption.forget(clientId);
      },
    });
    const wire = recordingWebSocket();
    const { client, got, errors } = recording({ encryption: true, WebSocket: wire.WebSocket });
    const { id, encrypted } = await client.ready;
    expect(encrypted).toBe(true);
    await client.join('h-a');
    publish('h-a', 1, 2);
    await eventually(() => got.notes.length === 2, 2_000, 'first two');
    const frame = JSON.parse(wire.received.find((raw) => raw.includes('"room"'))!);
    expect(frame).toMatchObject({ event: 'encrypted', room: 'h-a', offset: 1 });
    // Every frame after `connected` is encrypted, the join answer included.
    expect(wire.received.slice(1).every((raw) => JSON.parse(raw).event === 'encrypted')).toBe(true);
    expect(JSON.stringify(frame.data)).not.toContain('"n"');

    const reconnecting = waitForState(client, 'reconnecting');
    server!.helper.getClients({ id })!.socket.close(4002, 'Heartbeat timeout');
    await reconnecting;
    publish('h-a', 3, 3);
    await eventually(() => got.recoveries.length === 1, 3_000, 'recovery');
    expect(got.recoveries[0]).toMatchObject({ recovered: true, recoveredCount: 3 });
    expect(got.notes).toEqual([1, 2, 3, 4, 5]);
    expect(errors).toEqual([]);
  });

  test('a client that joins late starts at the current position and can read the past with history()', async () => {
    await historyServer();
    publish('h-a', 1, 4);
    const { client, got } = recording();
    await client.ready;
    await client.join('h-a');
    expect(client.position('h-a')).toMatchObject({ offset: 4 });
    publish('h-a', 5, 1);
    await eventually(() => got.notes.length === 1, 2_000, 'live one');
    expect(got.notes).toEqual([5]);
    expect((await client.history('h-a')).publications.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(got.recoveries).toEqual([]);
  });
});
