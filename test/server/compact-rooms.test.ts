// A client only in its own id room and the default rooms keeps no Set of rooms and no entries in the
// default rooms' member sets (memory per connection); every query must answer as if it did. Narrow
// tests through the helper's lifecycle entry points with fake sockets, so the queries run before
// anything reads `client.rooms` (which builds the Set).
import { afterEach, describe, expect, test } from 'bun:test';
import { silentLogger, WebSocketDefaults, WebSocketServerHelper } from '../../src/index.ts';
import { checkRegistryInvariants, FakeServer, FakeSocket } from '../support/fake-socket.ts';

const DEFAULTS = [WebSocketDefaults.ROOM, WebSocketDefaults.NOTIFICATION_ROOM];
let helper: WebSocketServerHelper | undefined;

afterEach(async () => {
  await helper?.shutdown();
  helper = undefined;
});

function setUp(): {
  server: FakeServer;
  connect: (id: string) => FakeSocket;
  close: (s: FakeSocket) => void;
} {
  const server = new FakeServer();
  const h = new WebSocketServerHelper({
    identifier: 'compact',
    server: server as never,
    logger: silentLogger,
    authenticateFn: (data: { user?: string }) => ({ userId: data.user }),
  });
  helper = h;
  return {
    server,
    connect(id) {
      const socket = new FakeSocket(id);
      server.attach(socket);
      h.onClientConnect({ clientId: id, socket: socket as never });
      h.onClientMessage({ clientId: id, raw: `{"event":"authenticate","data":{"user":"u-${id}"}}`, socket });
      return socket;
    },
    close(socket) {
      socket.close(1000);
      h.onClientDisconnect({ clientId: socket.clientId, socket: socket as never, code: 1000 });
    },
  };
}

const ids = (clients: { id: string }[]) => clients.map((c) => c.id).sort();

describe('clients only in their default rooms', () => {
  test('are members of every default room and their own id room, and reached there', () => {
    const { server, connect } = setUp();
    const sockets = ['a', 'b', 'c'].map(connect);
    const h = helper!;
    for (const room of DEFAULTS) expect(ids(h.getClientsByRoom({ room }))).toEqual(['a', 'b', 'c']);
    expect(ids(h.getClientsByRoom({ room: 'b' }))).toEqual(['b']);
    expect(h.getStats()).toMatchObject({ clients: 3, users: 3, rooms: 2 + 3, authTimers: 0 });
    expect(server.publish(WebSocketDefaults.NOTIFICATION_ROOM, 'x')).toBe(3);
    for (const socket of sockets) {
      expect([...socket.topics].sort()).toEqual(
        [...DEFAULTS, socket.clientId, WebSocketDefaults.BROADCAST_TOPIC].sort(),
      );
    }
    // Read last: the Set is built on demand and holds the same rooms.
    expect([...h.getClients({ id: 'a' })!.rooms].sort()).toEqual([...DEFAULTS, 'a'].sort());
    checkRegistryInvariants(h);
  });

  test('leaving a default room makes the others ordinary rooms; disconnects empty every index', () => {
    const { server, connect, close } = setUp();
    const sockets = ['a', 'b', 'c'].map(connect);
    const h = helper!;
    h.leaveRoom({ clientId: 'b', room: WebSocketDefaults.ROOM });
    expect(ids(h.getClientsByRoom({ room: WebSocketDefaults.ROOM }))).toEqual(['a', 'c']);
    expect(ids(h.getClientsByRoom({ room: WebSocketDefaults.NOTIFICATION_ROOM }))).toEqual(['a', 'b', 'c']);
    expect(server.publish(WebSocketDefaults.ROOM, 'x')).toBe(2);
    h.joinRoom({ clientId: 'a', room: 'extra' });
    expect(ids(h.getClientsByRoom({ room: 'extra' }))).toEqual(['a']);
    expect(h.getStats().rooms).toBe(2 + 1 + 3); // the defaults, `extra`, the id rooms
    checkRegistryInvariants(h);
    h.leaveRoom({ clientId: 'c', room: 'c' });
    expect(h.getClientsByRoom({ room: 'c' })).toEqual([]);
    expect(h.getStats().rooms).toBe(2 + 1 + 2);

    close(sockets[0]!);
    expect(ids(h.getClientsByRoom({ room: WebSocketDefaults.NOTIFICATION_ROOM }))).toEqual(['b', 'c']);
    close(sockets[1]!);
    close(sockets[2]!);
    expect(h.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0, authTimers: 0 });
    for (const room of [...DEFAULTS, 'extra']) expect(h.getClientsByRoom({ room })).toEqual([]);
  });

  test('a client asked to join a room before authenticating (a no-op: nothing before admission), or turned encrypted, stays correct', () => {
    const { server, connect, close } = setUp();
    const h = helper!;
    const early = new FakeSocket('early');
    server.attach(early);
    h.onClientConnect({ clientId: 'early', socket: early as never });
    h.joinRoom({ clientId: 'early', room: 'lobby' });
    h.onClientMessage({
      clientId: 'early',
      raw: '{"event":"authenticate","data":{"user":"u"}}',
      socket: early,
    });
    const plain = connect('plain');
    h.enableClientEncryption({ clientId: 'plain' });
    expect(plain.topics.size).toBe(0);
    for (const room of DEFAULTS) expect(ids(h.getClientsByRoom({ room }))).toEqual(['early', 'plain']);
    expect(ids(h.getClientsByRoom({ room: 'lobby' }))).toEqual([]);
    expect(early.topics.has('lobby')).toBe(false);
    checkRegistryInvariants(h);
    close(early);
    close(plain);
    expect(h.getStats()).toMatchObject({ clients: 0, users: 0, rooms: 0 });
  });
});

test('a client record serializes as before, also while authenticating (no internal fields)', () => {
  const { server } = setUp();
  const socket = new FakeSocket('pending');
  server.attach(socket);
  helper!.onClientConnect({ clientId: 'pending', socket: socket as never });
  const json = JSON.parse(JSON.stringify(helper!.getClients({ id: 'pending' }))) as Record<string, unknown>;
  expect(Object.keys(json).sort()).toEqual(
    ['backpressured', 'connectedAt', 'encrypted', 'id', 'lastActivity', 'rooms', 'socket', 'state'].sort(),
  );
});
