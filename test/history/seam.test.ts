import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { IHistoryPolicy } from '../../src/index.ts';
import { startServer } from '../support/server.ts';
import { type IFrame, TestClient } from '../support/ws-client.ts';
import { startHistoryPair } from './support.ts';

/**
 * The seam of a recovery: publications keep arriving while recovering clients' history is
 * read. Every client reconnects several times (alternating instances over Redis) and must see
 * every offset after its first position exactly once, in order.
 */

const ROOM = 'h-seam';
const historyFn = ({ room }: { room: string }): IHistoryPolicy | null =>
  room === ROOM ? { size: 10_000, ttl: 60_000 } : null;
const validateRoomFn = ({ rooms }: { rooms: string[] }) => rooms;
type Positioned = IFrame & { offset: number; epoch: string };

interface ISession {
  offsets: number[];
  recovered: boolean[];
  start: number;
  epoch: string;
}

/** Connects, joins with `since` when it has a position, records offsets; returns the socket. */
async function connect(
  url: string,
  session: ISession | undefined,
): Promise<{ client: TestClient; session: ISession }> {
  const client = await TestClient.authenticated(url);
  const last = session && { offset: session.start + session.offsets.length, epoch: session.epoch };
  client.send({
    event: 'join',
    data: { rooms: [ROOM], ...(last ? { since: { [ROOM]: last } } : {}) },
    id: 'j',
  });
  const reply = await client.next('join');
  const position = reply.data.positions[ROOM] as { offset: number; epoch: string };
  const current: ISession = session ?? {
    offsets: [],
    recovered: [],
    start: position.offset,
    epoch: position.epoch,
  };
  if (session) current.recovered.push(reply.data.recovered[ROOM]);
  return { client, session: current };
}

/** The offsets a connection received (after its join reply), appended to the session when it closes. */
function collect(client: TestClient, session: ISession): void {
  const frames = client.all('m') as Positioned[];
  for (const f of frames) {
    expect(f.epoch).toBe(session.epoch);
    session.offsets.push(f.offset);
  }
}

async function runSeam(opts: {
  urls: string[];
  publish: (i: number) => unknown;
  total: number;
  clients: number;
  reconnects: number;
}): Promise<ISession[]> {
  let published = 0;
  const publisher = (async () => {
    for (let i = 1; i <= opts.total; i++) {
      await opts.publish(i);
      published = i;
      if (i % 4 === 0) await Bun.sleep(1);
    }
  })();
  const runClient = async (k: number): Promise<ISession> => {
    let { client, session } = await connect(opts.urls[k % opts.urls.length]!, undefined);
    for (let r = 1; r <= opts.reconnects; r++) {
      await Bun.sleep(5 + ((k * 7 + r * 13) % 25));
      client.close();
      await client.closed;
      collect(client, session);
      await Bun.sleep((k + r) % 3 === 0 ? 0 : (k * 3 + r * 5) % 20);
      ({ client, session } = await connect(opts.urls[(k + r) % opts.urls.length]!, session));
    }
    await publisher;
    const finalTop = opts.total - session.start;
    await client.until(
      () => session.offsets.length + client.all('m').length >= finalTop,
      'all publications',
      10_000,
    );
    await Bun.sleep(50); // a duplicate would arrive now
    client.close();
    collect(client, session);
    return session;
  };
  const sessions = await Promise.all(Array.from({ length: opts.clients }, (_, k) => runClient(k)));
  expect(published).toBe(opts.total);
  return sessions;
}

function expectContiguous(sessions: ISession[], total: number): void {
  for (const session of sessions) {
    const expected = Array.from({ length: total - session.start }, (_, i) => session.start + i + 1);
    expect(session.offsets).toEqual(expected);
    expect(session.recovered.every(Boolean)).toBe(true);
  }
}

for (const subscriptionMode of ['pattern', 'rooms'] as const) {
  describe(`the seam over Redis (${subscriptionMode} subscriptions)`, () => {
    let pair: Awaited<ReturnType<typeof startHistoryPair>>;
    beforeAll(async () => {
      // Without default rooms, in `rooms` mode an instance whose last member of the room left
      // unsubscribes it, so a recovering join there must subscribe before reading the history.
      pair = await startHistoryPair(historyFn, { subscriptionMode, defaultRooms: [] });
    });
    afterAll(() => pair.stop());

    test('two instances and the emitter: each client gets every offset exactly once, in order', async () => {
      const total = 1_200;
      const sessions = await runSeam({
        urls: [pair.a.url, pair.b.url],
        publish: (i) =>
          i % 5 === 0
            ? pair.a.helper.send({ destination: ROOM, payload: { topic: 'm', data: i } })
            : pair.emitter.toRoom({ room: ROOM, event: 'm', data: i }),
        total,
        clients: 12,
        reconnects: 6,
      });
      expectContiguous(sessions, total);
      expect(sessions.reduce((n, s) => n + s.recovered.length, 0)).toBe(12 * 6);
    }, 30_000);
  });
}

describe('the seam: publishing continuously while clients recover', () => {
  test('single instance (memory): the same', async () => {
    const server = await startServer({ validateRoomFn, historyFn });
    try {
      const total = 800;
      const sessions = await runSeam({
        urls: [server.url],
        publish: (i) => server.helper.send({ destination: ROOM, payload: { topic: 'm', data: i } }),
        total,
        clients: 8,
        reconnects: 5,
      });
      expectContiguous(sessions, total);
    } finally {
      await server.stop();
    }
  }, 30_000);
});
