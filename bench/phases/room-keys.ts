// The sealed-rooms phase of the benchmark (issue 20, point 3): a room whose messages are encrypted
// once under the room's key and fanned out with Bun's native publish (`roomKeys`), against the same
// fan-out unencrypted, at each scale. Server CPU per delivered message, measured in the server's own
// process (getrusage: every thread), from the first message until the clients counted every copy.
//
// Three kinds of process, this file in each: the orchestrator (`roomKeysPhase`, in the run), one
// server process holding two helpers (a plain one, and one with per-client ECDH encryption and
// `roomKeys`), and two client processes (Bun's WebSocket client, counting frames; the encrypted
// clients do the real ECDH handshake, one key pair per process, and do not decrypt: what they
// receive is counted by its event). The plain and the sealed sides run one after the other at each
// scale (both connected at once would take more open files than a process may have here at 10,000).

import { silentLogger } from '../../src/common/logger.ts';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';

export interface IRoomKeysSettings {
  /** Clients per scale. */
  scales: number[];
  /** Room messages per round. */
  messages: number;
  /** Rounds per side and scale. */
  rounds: number;
}

export interface IRoomKeysScaleResult {
  clients: number;
  /** Server CPU per delivered message (ns), one figure per round. */
  plainNs: number[];
  sealedNs: number[];
  /** Median sealed ÷ median plain. */
  ratio: number;
  /** One member removed from the sealed room: keys sent (one per-client encryption each) and server CPU per remaining member. */
  rotation: { remaining: number; keysSent: number; usPerMember: number };
  /** Bytes of one frame on the wire, each side. */
  frameBytes: { plain: number; sealed: number };
}

export interface IRoomKeysResult {
  settings: IRoomKeysSettings;
  scales: IRoomKeysScaleResult[];
}

/** What `npm run bench` measures. */
export const ROOM_KEYS_SETTINGS: IRoomKeysSettings = {
  scales: [1_000, 5_000, 10_000],
  messages: 200,
  rounds: 3,
};
/** The target: sealed fan-out at most this many times the CPU of the same unencrypted fan-out. */
export const ROOM_KEYS_TARGET = 1.5;

const PLAIN_ROOM = 'bench-plain';
const SEALED_ROOM = 'secret:bench';
const PAYLOAD = { text: 'x'.repeat(44) }; // with `n`, about 60 bytes of data
const CLIENT_PROCESSES = 2;
const CONNECT_CONCURRENCY = 64;
const BATCH = 50;

// ------------------------------------------------------------------ IPC

type TMessage = { id: number; cmd: string; [key: string]: unknown };

interface IChild {
  call<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  kill(): void;
}

function spawnChild(mode: 'server' | 'clients'): IChild {
  let next = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const proc = Bun.spawn([process.execPath, new URL(import.meta.url).pathname, mode], {
    stdio: ['ignore', 'inherit', 'inherit'],
    ipc(message: { id: number; ok: boolean; value?: unknown; error?: string }) {
      const pending = waiting.get(message.id);
      if (!pending) return;
      waiting.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new Error(message.error));
    },
  });
  void proc.exited.then((code) => {
    for (const pending of waiting.values()) pending.reject(new Error(`${mode} process exited ${code}`));
    waiting.clear();
  });
  return {
    call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
      const id = ++next;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, ...args });
      });
    },
    kill: () => proc.kill('SIGKILL'),
  };
}

function serve(handlers: Record<string, (message: TMessage) => unknown>): void {
  process.on('message', async (message: TMessage) => {
    try {
      const handler = handlers[message.cmd];
      if (!handler) throw new Error(`unknown command ${message.cmd}`);
      process.send!({ id: message.id, ok: true, value: await handler(message) });
    } catch (error) {
      process.send!({
        id: message.id,
        ok: false,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  });
}

// ------------------------------------------------------------------ orchestrator side

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Runs the phase (its own server and client processes) and returns what it measured. */
export async function roomKeysPhase(
  settings: IRoomKeysSettings,
  log: (line: string) => void = () => {},
): Promise<IRoomKeysResult> {
  const server = spawnChild('server');
  const clients = Array.from({ length: CLIENT_PROCESSES }, () => spawnChild('clients'));
  const limit = setTimeout(() => {
    for (const child of [server, ...clients]) child.kill();
  }, 15 * 60_000);
  try {
    const urls = await server.call<{ plain: string; sealed: string }>('start');
    const results: IRoomKeysScaleResult[] = [];
    for (const n of settings.scales) {
      const side = async (sealed: boolean): Promise<{ ns: number[]; frameBytes: number }> => {
        const url = sealed ? urls.sealed : urls.plain;
        const room = sealed ? SEALED_ROOM : PLAIN_ROOM;
        await Promise.all(
          clients.map((c, i) =>
            c.call('connect', {
              url,
              room,
              sealed,
              count: Math.floor(n / CLIENT_PROCESSES) + (i < n % CLIENT_PROCESSES ? 1 : 0),
            }),
          ),
        );
        const round = async (messages: number): Promise<number> => {
          await Promise.all(clients.map((c) => c.call('reset')));
          const before = await server.call<number>('cpu');
          await server.call('send', { room, messages });
          const expected = messages * n;
          const deadline = Date.now() + 120_000;
          for (;;) {
            const counts = await Promise.all(clients.map((c) => c.call<number>('count')));
            const total = counts.reduce((a, b) => a + b, 0);
            if (total >= expected) break;
            if (Date.now() > deadline)
              throw new Error(`${sealed ? 'sealed' : 'plain'} ${n}: ${total} of ${expected} delivered`);
            await Bun.sleep(10);
          }
          const after = await server.call<number>('cpu');
          return ((after - before) * 1000) / expected;
        };
        await round(20); // warm-up
        const ns: number[] = [];
        for (let r = 0; r < settings.rounds; r++) ns.push(await round(settings.messages));
        const frameBytes = (await clients[0]!.call<number>('lastFrameBytes')) ?? 0;
        return { ns, frameBytes };
      };
      const plain = await side(false);
      await Promise.all(clients.map((c) => c.call('close')));
      const sealed = await side(true);
      const rotations: Array<{ remaining: number; keysSent: number; us: number }> = [];
      for (let r = 0; r < 3; r++) rotations.push(await server.call('rotate', { room: SEALED_ROOM }));
      await Promise.all(clients.map((c) => c.call('close')));
      const us = median(rotations.map((x) => x.us));
      const last = rotations.at(-1)!;
      const result: IRoomKeysScaleResult = {
        clients: n,
        plainNs: plain.ns,
        sealedNs: sealed.ns,
        ratio: median(sealed.ns) / median(plain.ns),
        rotation: { remaining: last.remaining, keysSent: last.keysSent, usPerMember: us / last.remaining },
        frameBytes: { plain: plain.frameBytes, sealed: sealed.frameBytes },
      };
      log(
        `sealed rooms ${n}: plain ${median(plain.ns).toFixed(0)} ns, sealed ${median(sealed.ns).toFixed(0)} ns per delivery (${result.ratio.toFixed(2)}×); rotation on a leave: ${last.keysSent} keys for ${last.remaining} members`,
      );
      results.push(result);
    }
    return { settings, scales: results };
  } finally {
    clearTimeout(limit);
    await Promise.allSettled([server, ...clients].map((c) => c.call('exit').catch(() => {})));
    for (const child of [server, ...clients]) child.kill();
  }
}

const fmtNs = (xs: number[]) =>
  `${median(xs).toFixed(0)} ns <br><sub>rounds ${xs.map((x) => x.toFixed(0)).join(', ')}</sub>`;

/** The sealed-rooms table of docs/benchmarks.md's encrypted section (rendered by bench/lib/report.ts). */
export function roomKeysSection(result: IRoomKeysResult): string[] {
  const s = result.settings;
  const rows = result.scales.map((r) => {
    const holds = r.ratio <= ROOM_KEYS_TARGET;
    return `| ${r.clients.toLocaleString('en-US')} | ${fmtNs(r.plainNs)} | ${fmtNs(r.sealedNs)} | ${r.ratio.toFixed(2)}× (${holds ? 'holds' : '**MISSED**'}) | ${r.frameBytes.plain} / ${r.frameBytes.sealed} B | ${r.rotation.keysSent} keys for ${r.rotation.remaining.toLocaleString('en-US')} members, ${r.rotation.usPerMember.toFixed(1)} µs each |`;
  });
  return [
    '### Sealed rooms (room keys) vs the same fan-out unencrypted',
    '',
    `One room, every client in it; ${s.messages} messages of about 60 bytes per round, ${s.rounds} rounds per side (median shown), server CPU (every thread) per delivered message. Plain: clients without encryption, a plain room. Sealed: clients with per-client ECDH encryption in a room with \`roomKeys\` (each message encrypted once under the room's key, one native publish). The last column: one member removed from the sealed room, the keys the new generation cost (one per-client encryption per remaining member) and the server CPU per remaining member (median of 3). Target: sealed ≤ ${ROOM_KEYS_TARGET}× plain. Command: \`bun run bench/run.ts --room-keys-only\`.`,
    '',
    '| clients | plain | sealed | sealed ÷ plain | frame plain / sealed | rotation on a leave |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

// ------------------------------------------------------------------ server process

async function serverProcess(): Promise<void> {
  const quiet = { ...silentLogger, warn: console.error, error: console.error };
  const encryption = await createEcdhEncryption();
  const start = async (sealed: boolean) => {
    const server = Bun.serve<{ clientId: string }>({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => new Response('starting', { status: 503 }),
      websocket: { message() {} },
    });
    const helper = new WebSocketServerHelper({
      identifier: sealed ? 'bench-sealed' : 'bench-plain',
      server,
      logger: quiet,
      heartbeatTimeout: 600_000,
      authenticateFn: (data: { token?: string }) => (data.token === 'ok' ? { userId: 'bench' } : null),
      validateRoomFn: ({ rooms }) => rooms,
      ...(sealed
        ? {
            requireEncryption: true,
            handshakeFn: encryption.handshakeFn,
            outboundTransformer: encryption.outboundTransformer,
            clientDisconnectedFn: ({ clientId }: { clientId: string }) => {
              encryption.forget(clientId);
            },
            roomKeys: { rooms: (room: string) => room.startsWith('secret:') },
          }
        : {}),
    });
    await helper.configure();
    server.reload({
      fetch(request, srv) {
        if (new URL(request.url).pathname === helper.getPath()) {
          return srv.upgrade(request, { data: { clientId: crypto.randomUUID() } })
            ? undefined
            : new Response('upgrade failed', { status: 500 });
        }
        return new Response('ok');
      },
      websocket: helper.getBunWebSocketHandler() as never,
    });
    return { helper, url: `ws://127.0.0.1:${server.port}${helper.getPath()}` };
  };
  const plain = await start(false);
  const sealed = await start(true);
  const cpu = () => {
    const usage = process.cpuUsage();
    return usage.user + usage.system;
  };
  serve({
    start: () => ({ plain: plain.url, sealed: sealed.url }),
    cpu,
    send: async (m) => {
      const room = m.room as string;
      const helper = room === SEALED_ROOM ? sealed.helper : plain.helper;
      for (let n = 0; n < (m.messages as number); n++) {
        helper.sendToRoom({ room, event: 'm', data: { ...PAYLOAD, n } });
        if (n % BATCH === BATCH - 1) await new Promise((resolve) => setImmediate(resolve));
      }
      return true;
    },
    rotate: async (m) => {
      const room = m.room as string;
      const keys = sealed.helper.roomKeys!;
      const members = sealed.helper.getClientsByRoom({ room });
      const leaver = members[0]!;
      const sentBefore = keys.stats.keysSent;
      const before = cpu();
      sealed.helper.leaveRoom({ clientId: leaver.id, room });
      keys.generation(room); // starts the new generation now (else before the next message, or 20 ms on)
      // The keys are written when the task ends (one corked write per client): count that too.
      await new Promise((resolve) => setImmediate(resolve));
      const us = cpu() - before;
      return { remaining: members.length - 1, keysSent: keys.stats.keysSent - sentBefore, us };
    },
    exit: () => {
      setTimeout(() => process.exit(0), 10);
      return true;
    },
  });
}

// ------------------------------------------------------------------ client process

async function clientsProcess(): Promise<void> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, [
    'deriveBits',
  ])) as CryptoKeyPair;
  const publicKey = Buffer.from(await crypto.subtle.exportKey('raw', pair.publicKey)).toString('base64');
  let sockets: WebSocket[] = [];
  let count = 0;
  let lastFrameBytes = 0;
  let marker = '';
  const connectOne = (url: string, room: string, sealed: boolean) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      let afterConnected = -1;
      const timer = setTimeout(() => reject(new Error('connect timed out')), 30_000);
      ws.onopen = () =>
        ws.send(
          JSON.stringify({
            event: 'authenticate',
            data: sealed ? { token: 'ok', publicKey } : { token: 'ok' },
          }),
        );
      ws.onmessage = (event) => {
        const text = event.data as string;
        if (afterConnected < 0) {
          if (!text.startsWith('{"event":"connected"')) return;
          afterConnected = 0;
          ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] }, id: 'j' }));
          return;
        }
        // Sealed: the room's key and the join answer (both inside `encrypted` frames); plain: the answer.
        afterConnected++;
        if (sealed ? afterConnected === 2 : text.includes('"event":"join"')) {
          clearTimeout(timer);
          ws.onmessage = (message) => {
            const frame = message.data as string;
            if (frame.includes(marker)) {
              count++;
              lastFrameBytes = frame.length;
            }
          };
          resolve(ws);
        }
      };
      ws.onclose = (event) => reject(new Error(`closed ${event.code} before joining`));
    });
  serve({
    connect: async (m) => {
      const sealed = m.sealed as boolean;
      marker = sealed ? '"event":"ws:sealed"' : '"event":"m"';
      const total = m.count as number;
      let started = 0;
      const worker = async () => {
        while (started < total) {
          started++;
          sockets.push(await connectOne(m.url as string, m.room as string, sealed));
        }
      };
      await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
      return sockets.length;
    },
    reset: () => {
      count = 0;
      return true;
    },
    count: () => count,
    lastFrameBytes: () => lastFrameBytes,
    close: async () => {
      for (const ws of sockets) {
        ws.onclose = null;
        ws.close();
      }
      sockets = [];
      await Bun.sleep(500);
      return true;
    },
    exit: () => {
      setTimeout(() => process.exit(0), 10);
      return true;
    },
  });
}

if (import.meta.main) {
  // Bounded: a child stops by itself whatever happens.
  setTimeout(() => process.exit(2), 20 * 60_000).unref();
  if (process.argv[2] === 'server') await serverProcess();
  else if (process.argv[2] === 'clients') await clientsProcess();
  else {
    // Alone: `bun bench/phases/room-keys.ts [--scales 1000,5000] [--messages N] [--rounds N]` prints its figures.
    const arg = (name: string) => {
      const at = process.argv.indexOf(name);
      return at >= 0 ? process.argv[at + 1] : undefined;
    };
    const settings: IRoomKeysSettings = {
      scales: (arg('--scales') ?? ROOM_KEYS_SETTINGS.scales.join(',')).split(',').map(Number),
      messages: Number(arg('--messages') ?? ROOM_KEYS_SETTINGS.messages),
      rounds: Number(arg('--rounds') ?? ROOM_KEYS_SETTINGS.rounds),
    };
    const result = await roomKeysPhase(settings, console.log);
    console.log(roomKeysSection(result).join('\n'));
    process.exit(0);
  }
}
