import { afterAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { WebSocketClientStates, WebSocketEvents } from '../../src/common/constants.ts';
import { silentLogger } from '../../src/common/logger.ts';
import type { AnyRecord } from '../../src/common/types.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { checkRegistryInvariants, FakeServer, FakeSocket } from '../support/fake-socket.ts';
import { figure } from '../support/figures.ts';

/**
 * Property-based fuzzing of the inbound path and of the connection lifecycle,
 * on fake sockets (no network). Every generated frame goes through
 * `onClientMessage`; after every step the registry invariants must hold
 * (see checkRegistryInvariants) and nothing may throw.
 *
 * A failing run prints fast-check's seed and counterexample; rerun it with
 * FUZZ_SEED=<seed> (and FUZZ_PATH=<path>) to replay it exactly.
 */

const FRAME_FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 3_000);
const SEQUENCE_RUNS = Number(process.env.FUZZ_SEQUENCE_RUNS ?? 2_000);
const MIN_FRAMES = 100_000;
const seedParams = (): { seed?: number; path?: string } =>
  process.env.FUZZ_SEED
    ? {
        seed: Number(process.env.FUZZ_SEED),
        ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
      }
    : {};

let framesFed = 0;
let stepsRun = 0;
/** How deep the generated runs reached, so a fuzzer that stopped exploring shows up. */
const reached = {
  admitted: 0,
  closedByServer: 0,
  idReplaced: 0,
  heldReleased: 0,
  deliveries: 0,
  maxRooms: 0,
};

afterAll(() => {
  figure('fuzz.frames', framesFed);
  figure('fuzz.lifecycle-steps', stepsRun);
  for (const [name, value] of Object.entries(reached)) figure(`fuzz.reached.${name}`, value);
});

interface IHeld {
  resolve: (value: { userId: string } | null) => void;
  reject: (error: Error) => void;
}

/**
 * One helper on a fake server plus the bookkeeping a test needs: which socket
 * currently owns an id, which ids are gone, server-initiated closes waiting
 * for their close callback, and authentications held open.
 */
class Harness {
  readonly server = new FakeServer();
  readonly helper: WebSocketServerHelper;
  readonly sockets: FakeSocket[] = [];
  readonly current = new Map<string, FakeSocket>();
  readonly gone = new Set<string>();
  readonly held: IHeld[] = [];
  private readonly closing: FakeSocket[] = [];
  readonly violations: string[] = [];
  connectedCalls = 0;
  disconnectedCalls = 0;
  private nextId = 0;

  constructor() {
    this.helper = new WebSocketServerHelper({
      identifier: 'fuzz',
      server: this.server,
      logger: silentLogger,
      authTimeout: 60_000, // timers must not fire mid-run; they are checked by count instead
      authenticateFn: (data: AnyRecord) => this.authenticate(data),
      validateRoomFn: ({ rooms }) => rooms.filter((_, i) => i % 3 !== 2), // grants some, not all
      clientConnectedFn: ({ clientId }) => {
        this.connectedCalls++;
        reached.admitted++;
        const client = this.helper.getClients({ id: clientId });
        if (client?.state !== WebSocketClientStates.AUTHENTICATED || this.gone.has(clientId)) {
          this.violations.push(`clientConnectedFn for ${clientId} which is not an admitted, live client`);
        }
      },
      clientDisconnectedFn: () => {
        this.disconnectedCalls++;
      },
      messageHandler: ({ message }) => {
        if (message.event === 'boom') throw new Error('handler failure must be contained');
      },
    });
  }

  private authenticate(data: AnyRecord): { userId: string } | null | Promise<{ userId: string } | null> {
    const user = typeof data.user === 'string' ? data.user : 'u1';
    switch (data.token) {
      case 'ok':
        return { userId: user };
      case 'hold':
        return new Promise((resolve, reject) => this.held.push({ resolve, reject }));
      case 'throw':
        throw new Error('authenticateFn failure must be contained');
      default:
        return null;
    }
  }

  connect(id?: string): FakeSocket {
    const clientId = id ?? `c${this.nextId++}`;
    const socket = new FakeSocket(clientId, (s) => {
      reached.closedByServer++;
      this.closing.push(s);
    });
    this.server.attach(socket);
    this.sockets.push(socket);
    this.current.set(clientId, socket);
    this.gone.delete(clientId);
    this.helper.onClientConnect({ clientId, socket });
    return socket;
  }

  message(socket: FakeSocket, raw: unknown): void {
    framesFed++;
    this.helper.onClientMessage({ clientId: socket.clientId, raw, socket });
  }

  /** The peer went away (or Bun delivers the close callback of a server-initiated close). */
  disconnect(socket: FakeSocket): void {
    if (socket.readyState === 3) return;
    socket.readyState = 3;
    socket.topics.clear();
    this.server.detach(socket);
    this.helper.onClientDisconnect({ clientId: socket.clientId, socket });
    if (this.current.get(socket.clientId) === socket) {
      this.current.delete(socket.clientId);
      this.gone.add(socket.clientId);
    }
  }

  deliverCloses(): void {
    while (this.closing.length > 0) this.disconnect(this.closing.shift()!);
  }

  release(index: number, outcome: 'ok' | 'null' | 'throw', user = 'u2'): void {
    const [held] = this.held.splice(index % Math.max(this.held.length, 1), 1);
    if (!held) return;
    reached.heldReleased++;
    if (outcome === 'ok') held.resolve({ userId: user });
    else if (outcome === 'null') held.resolve(null);
    else held.reject(new Error('late failure'));
  }

  /** Lets pending authentications and room validations run to completion. */
  async settle(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  check(): void {
    if (this.violations.length > 0) throw new Error(this.violations.join('; '));
    checkRegistryInvariants(this.helper, this.gone);
    reached.maxRooms = Math.max(reached.maxRooms, this.helper.getStats().rooms);
    // A current, open socket whose client is registered must be the registered one.
    for (const [id, socket] of this.current) {
      const client = this.helper.getClients({ id });
      if (socket.readyState === 1 && client?.socket !== socket) {
        throw new Error(`open socket ${id} is not the registered one`);
      }
      if (client?.encrypted && socket.readyState === 1 && socket.topics.size > 0) {
        throw new Error(`encrypted client ${id} is still subscribed to [${[...socket.topics]}]`);
      }
    }
    if (({} as AnyRecord).polluted !== undefined) throw new Error('Object.prototype was polluted');
  }

  /** Everyone leaves; nothing may remain. */
  async teardown(): Promise<void> {
    while (this.held.length > 0) this.release(0, 'ok');
    await this.settle();
    this.deliverCloses();
    for (const socket of this.sockets) this.disconnect(socket);
    await this.settle();
    this.deliverCloses();
    this.check();
    const stats = this.helper.getStats();
    if (stats.clients + stats.users + stats.rooms + stats.authTimers !== 0) {
      throw new Error(`left behind after everyone left: ${JSON.stringify(stats)}`);
    }
    if (this.connectedCalls !== this.disconnectedCalls) {
      throw new Error(`${this.connectedCalls} connected vs ${this.disconnectedCalls} disconnected callbacks`);
    }
    await this.helper.shutdown();
  }
}

// ------------------------------------------------------------------ arbitraries

const SYSTEM_EVENTS = [...WebSocketEvents.SCHEME_SET];

const roomName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('r1', 'r2', 'r3', 'ws-default', 'ws-notification') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('', 'ws:x', 'ws:internal:broadcast', 'x'.repeat(256), 'y'.repeat(257)),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
);
const roomsData = fc.oneof(
  fc.record({ rooms: fc.array(roomName, { maxLength: 8 }) }),
  fc.record({ rooms: fc.array(fc.constant('r1'), { minLength: 99, maxLength: 102 }) }),
  fc.record({ rooms: fc.anything({ maxDepth: 1 }) }),
);
const authData = fc.oneof(
  fc.record({
    token: fc.constantFrom('ok', 'hold', 'bad', 'throw'),
    user: fc.constantFrom('u1', 'u2', 'u3'),
  }),
  fc.jsonValue({ maxDepth: 2 }),
);
const eventName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...SYSTEM_EVENTS) },
  { weight: 2, arbitrary: fc.constantFrom('chat', 'boom', '__proto__', 'constructor', 'toString') },
  { weight: 2, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
/** Frames shaped like the protocol, so the fuzzer reaches past the JSON checks. */
const structuredFrame = fc
  .record(
    {
      event: eventName,
      data: fc.oneof(roomsData, authData, fc.jsonValue({ maxDepth: 3 })),
      id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    },
    { requiredKeys: ['event'] },
  )
  .map((frame) => JSON.stringify(frame));
/** Prototype-pollution shapes, including the `\u` escape that spells `__proto__`. */
const hostileFrame = fc.constantFrom(
  '{"event":"chat","data":{"__proto__":{"polluted":true}}}',
  '{"event":"join","data":{"rooms":["r1"],"__proto__":{"polluted":true}}}',
  '{"event":"authenticate","data":{"token":"ok","constructor":{"prototype":{"polluted":true}}}}',
  '{"event":"chat","data":{"\\u005f_proto__":{"polluted":true}}}',
  '{"__proto__":{"event":"join"},"event":"heartbeat"}',
  '{"event":"join","data":{"rooms":{"length":1000000000}}}',
  '{"event":"join","data":{"rooms":[null,{},[],1e308,"r1"]}}',
  `{"event":"chat","data":${'['.repeat(2_000)}${']'.repeat(2_000)}}`,
  '{"event":"heartbeat"',
  '',
  'null',
  '[]',
  '"authenticate"',
);
const anyFrame: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: structuredFrame },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: hostileFrame },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

const AUTH_OK = JSON.stringify({ event: 'authenticate', data: { token: 'ok', user: 'u1' } });
const AUTH_HOLD = JSON.stringify({ event: 'authenticate', data: { token: 'hold', user: 'u1' } });

// ------------------------------------------------------------------- properties

describe('fuzzing the inbound path', () => {
  test(`arbitrary frames in every client state never throw and keep the invariants (≥ ${MIN_FRAMES} frames)`, async () => {
    const before = framesFed;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('unauthorized', 'authenticating', 'authenticated'),
        fc.array(anyFrame, { minLength: 30, maxLength: 70 }),
        async (state, frames) => {
          const h = new Harness();
          const socket = h.connect();
          if (state === 'authenticating') h.message(socket, AUTH_HOLD);
          if (state === 'authenticated') {
            h.message(socket, AUTH_OK);
            await h.settle();
          }
          expect(h.helper.getClients({ id: socket.clientId })?.state).toBe(state);
          h.check();
          for (const frame of frames) {
            h.message(socket, frame);
            h.check();
          }
          await h.settle();
          h.check();
          await h.teardown();
        },
      ),
      { numRuns: FRAME_FUZZ_RUNS, ...seedParams() },
    );
    const fed = framesFed - before;
    figure('fuzz.frame-property.frames', fed);
    expect(fed).toBeGreaterThanOrEqual(MIN_FRAMES);
  }, 120_000);
});

type TAction =
  | { kind: 'connect' }
  | { kind: 'reuse-id'; who: number }
  | { kind: 'auth'; who: number; token: 'ok' | 'hold' | 'bad' | 'throw'; user: string }
  | { kind: 'join' | 'leave'; who: number; rooms: unknown[] }
  | { kind: 'frame'; who: number; raw: unknown }
  | { kind: 'stale-frame'; who: number; raw: unknown }
  | { kind: 'disconnect'; who: number }
  | { kind: 'deliver-closes' }
  | { kind: 'release'; index: number; outcome: 'ok' | 'null' | 'throw'; user: string }
  | { kind: 'settle' }
  | { kind: 'server-join' | 'server-leave'; who: number; room: string }
  | { kind: 'encrypt'; who: number }
  | { kind: 'deliver'; to: 'room' | 'user' | 'all' | 'client' | 'send'; target: string; who: number };

const who = fc.nat({ max: 15 });
const validRoom = fc.constantFrom('r1', 'r2', 'r3', 'ws-default');
const action: fc.Arbitrary<TAction> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'connect' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reuse-id' as const), who }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('auth' as const),
      who,
      token: fc.constantFrom('ok' as const, 'ok' as const, 'hold' as const, 'bad' as const, 'throw' as const),
      user: fc.constantFrom('u1', 'u2', 'u3'),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom('join' as const, 'leave' as const),
      who,
      rooms: fc.array(roomName, { maxLength: 5 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('frame' as const), who, raw: anyFrame }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('stale-frame' as const), who, raw: structuredFrame }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), who }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'deliver-closes' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      index: fc.nat({ max: 5 }),
      outcome: fc.constantFrom('ok' as const, 'null' as const, 'throw' as const),
      user: fc.constantFrom('u1', 'u2', 'u3'),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('server-join' as const, 'server-leave' as const),
      who,
      room: validRoom,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('encrypt' as const), who }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      to: fc.constantFrom(
        'room' as const,
        'user' as const,
        'all' as const,
        'client' as const,
        'send' as const,
      ),
      target: fc.constantFrom('r1', 'r2', 'u1', 'u2', 'ws-default'),
      who,
    }),
  },
);

/** Applies one action; delivery actions also check that exactly the expected sockets were reached. */
async function apply(h: Harness, step: TAction): Promise<void> {
  const pick = (n: number): FakeSocket | undefined =>
    h.sockets.length === 0 ? undefined : h.sockets[n % h.sockets.length];
  switch (step.kind) {
    case 'connect':
      h.connect();
      return;
    case 'reuse-id': {
      const old = pick(step.who);
      if (!old) return;
      if (h.helper.getClients({ id: old.clientId })) reached.idReplaced++;
      h.connect(old.clientId); // the older connection is closed and forgotten
      return;
    }
    case 'auth': {
      const socket = pick(step.who);
      if (socket) {
        h.message(
          socket,
          JSON.stringify({ event: 'authenticate', data: { token: step.token, user: step.user } }),
        );
      }
      return;
    }
    case 'join':
    case 'leave': {
      const socket = pick(step.who);
      if (socket) h.message(socket, JSON.stringify({ event: step.kind, data: { rooms: step.rooms } }));
      return;
    }
    case 'frame': {
      const socket = pick(step.who);
      if (socket) h.message(socket, step.raw);
      return;
    }
    case 'stale-frame': {
      // A frame from a socket that does not own the id (e.g. after reuse-id) must be ignored.
      const socket = pick(step.who);
      if (!socket) return;
      const stranger = new FakeSocket(socket.clientId);
      framesFed++;
      h.helper.onClientMessage({ clientId: socket.clientId, raw: step.raw, socket: stranger });
      h.helper.onClientDisconnect({ clientId: socket.clientId, socket: stranger });
      if (stranger.sent !== 0) throw new Error('a stale socket was answered');
      return;
    }
    case 'disconnect': {
      const socket = pick(step.who);
      if (socket) h.disconnect(socket);
      return;
    }
    case 'deliver-closes':
      h.deliverCloses();
      return;
    case 'release':
      h.release(step.index, step.outcome, step.user);
      return;
    case 'settle':
      await h.settle();
      return;
    case 'server-join':
    case 'server-leave': {
      const socket = pick(step.who);
      if (!socket) return;
      if (step.kind === 'server-join') h.helper.joinRoom({ clientId: socket.clientId, room: step.room });
      else h.helper.leaveRoom({ clientId: socket.clientId, room: step.room });
      return;
    }
    case 'encrypt': {
      const socket = pick(step.who);
      if (socket) h.helper.enableClientEncryption({ clientId: socket.clientId });
      return;
    }
    case 'deliver':
      deliverAndCheck(h, step);
      return;
  }
}

function deliverAndCheck(h: Harness, step: Extract<TAction, { kind: 'deliver' }>): void {
  const clients = [...h.helper.getClients().values()];
  const target = step.to === 'client' ? (pick(h, step.who)?.clientId ?? 'nobody') : step.target;
  let expected: typeof clients;
  switch (step.to) {
    case 'room':
      expected = h.helper.getClientsByRoom({ room: target });
      break;
    case 'user':
      expected = h.helper.getClientsByUser({ userId: target });
      break;
    case 'all':
      expected = clients.filter((c) => c.state === WebSocketClientStates.AUTHENTICATED);
      break;
    case 'client':
      expected = clients.filter((c) => c.id === target);
      break;
    case 'send':
      // send() with a destination: the client with that id here, else the room.
      expected = h.helper.getClients({ id: target })
        ? clients.filter((c) => c.id === target)
        : h.helper.getClientsByRoom({ room: target });
      break;
  }
  // Nothing reaches a socket before admission, whatever the path.
  const open = new Set(
    expected
      .filter((c) => c.socket.readyState === 1 && c.state === WebSocketClientStates.AUTHENTICATED)
      .map((c) => c.socket),
  );
  const sentBefore = new Map(h.sockets.map((s) => [s, s.sent]));
  const data = { probe: true };
  switch (step.to) {
    case 'room':
      h.helper.sendToRoom({ room: target, event: 'probe', data });
      break;
    case 'user':
      h.helper.sendToUser({ userId: target, event: 'probe', data });
      break;
    case 'all':
      h.helper.broadcast({ event: 'probe', data });
      break;
    case 'client':
      h.helper.sendToClient({ clientId: target, event: 'probe', data });
      break;
    case 'send':
      h.helper.send({ destination: target, payload: { topic: 'probe', data } });
      break;
  }
  reached.deliveries += open.size;
  for (const socket of h.sockets) {
    const got = socket.sent - sentBefore.get(socket)!;
    const should = open.has(socket) ? 1 : 0;
    if (got !== should) {
      throw new Error(
        `${step.to} "${target}": socket ${socket.clientId} got ${got} frame(s), expected ${should}`,
      );
    }
  }
}

function pick(h: Harness, n: number): FakeSocket | undefined {
  return h.sockets.length === 0 ? undefined : h.sockets[n % h.sockets.length];
}

describe('fuzzing the connection lifecycle', () => {
  test('random connect / auth / join / leave / disconnect sequences across several clients keep the invariants', async () => {
    const at = { ...reached };
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 10, maxLength: 80 }), async (steps) => {
        const h = new Harness();
        h.connect();
        h.connect();
        for (const step of steps) {
          await apply(h, step);
          stepsRun++;
          h.check();
        }
        await h.teardown();
      }),
      { numRuns: SEQUENCE_RUNS, ...seedParams() },
    );
    // The sequences must have reached the interesting states, not just bounced off the auth check.
    expect(reached.admitted - at.admitted).toBeGreaterThan(SEQUENCE_RUNS / 4);
    expect(reached.closedByServer - at.closedByServer).toBeGreaterThan(0);
    expect(reached.idReplaced - at.idReplaced).toBeGreaterThan(0);
    expect(reached.heldReleased - at.heldReleased).toBeGreaterThan(0);
    expect(reached.deliveries - at.deliveries).toBeGreaterThan(0);
  }, 120_000);
});
