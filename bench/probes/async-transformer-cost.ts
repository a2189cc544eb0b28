// Probe: the server CPU per delivered message of an asynchronous outbound transformer (the
// specification's own: a WebCrypto CryptoKey per client, an awaited ECDH.encrypt of
// JSON.stringify({ event, data })), without the network: a WebSocketServerHelper on fake sockets
// (test/support/fake-socket.ts), every client encrypted and in one room, room messages sent in
// rounds of 10 as bench/run.ts sends them, the next round when every socket has written the last.
// Kinds, each in a child process of its own, in turn, `--sets` times:
//   subtle       WebCrypto alone: crypto.subtle.encrypt of the message's bytes, a fresh IV, the client's key
//   ecdh         + roomcast's ECDH.encrypt around it (the two base64 strings, the result object)
//   transformer  + the specification's transformer (JSON.stringify({ event, data }), the async function)
//   floor        + the answer's frame and the write: the transformer called per client through
//                executePromiseWithLimit, one window of 10 per message, each answer written as it
//                settles (unordered: what upstream Ignis does)
//   helper       the helper's own delivery (per-client order, local-delivery.ts + transform-lines.ts)
//   before       with --before DIR: the helper of another source tree
// The first four add one layer each, all on the floor's windows. Fake sockets: no socket write, so
// what the helper saves on real writes (several frames to one client in one corked write) is not
// here but in bench/run.ts --encrypted-only. Prints CPU µs (process.cpuUsage: every thread,
// WebCrypto's included) per delivered message, medians over the sets.
//   bun run bench/probes/async-transformer-cost.ts [--clients 1000] [--messages 50] [--reps 3] [--sets 3] [--before DIR]

import { ECDH } from '../../src/crypto/ecdh-native.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { executePromiseWithLimit } from '../../src/utils/promise.ts';
import { FakeServer, FakeSocket } from '../../test/support/fake-socket.ts';
import { makeData } from '../lib/shared.ts';

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const CLIENTS = arg('--clients', 1_000);
const MESSAGES = arg('--messages', 50);
const REPS = arg('--reps', 3);
const SETS = arg('--sets', 3);
const PER_ROUND = 10;
const ROOM = 'bench';
/** `--before DIR`: another source tree's helper (e.g. `git archive <commit> src | tar -x -C /tmp/before`) as kind `before`. */
const BEFORE = (() => {
  const at = process.argv.indexOf('--before');
  return at >= 0 ? process.argv[at + 1] : undefined;
})();
const ALL_KINDS = ['subtle', 'ecdh', 'transformer', 'floor', 'helper', 'before'] as const;
type TKind = (typeof ALL_KINDS)[number];
const KINDS: readonly TKind[] = BEFORE ? ALL_KINDS : ALL_KINDS.slice(0, -1);

const ecdh = ECDH.withAlgorithm();
const encoder = new TextEncoder();

/** Counts every frame written, and wakes the waiter when the round's last one is. */
let written = 0;
let target = 0;
let onTarget: (() => void) | undefined;
class CountingSocket extends FakeSocket {
  override send(data: string | Uint8Array): number {
    const n = super.send(data);
    if (++written === target) onTarget?.();
    return n;
  }
}
const until = (n: number) =>
  new Promise<void>((resolve) => {
    target = n;
    if (written >= n) resolve();
    else onTarget = resolve;
  });

type TTransform = (opts: {
  client: { encrypted: boolean; metadata?: { cryptoKey?: CryptoKey } };
  event: string;
  data: unknown;
}) => Promise<{ event: string; data: unknown } | null>;

// The specification's example, line for line.
const transformer: TTransform = async ({ client, event, data }) => {
  if (!client.encrypted) return null;
  const aesKey = client.metadata?.cryptoKey;
  if (!aesKey) return null;
  const encrypted = await ecdh.encrypt({ message: JSON.stringify({ event, data }), secret: aesKey });
  return { event: 'encrypted', data: encrypted };
};

async function keys(): Promise<CryptoKey[]> {
  return Promise.all(
    Array.from({ length: CLIENTS }, () =>
      crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), 'AES-GCM', false, [
        'encrypt',
      ]),
    ),
  );
}

/** Sets a kind up and answers a function sending `count` room messages from `seq`. */
async function setUp(kind: TKind): Promise<(seq: number, count: number) => void> {
  const cryptoKeys = await keys();
  if (kind !== 'helper' && kind !== 'before') {
    const clients = cryptoKeys.map((cryptoKey, i) => ({
      encrypted: true,
      metadata: { cryptoKey },
      socket: new CountingSocket(`c${i}`),
    }));
    // Each kind adds one layer to the one before; all run one window of 10 per message, as the floor does.
    const task = (
      client: (typeof clients)[number],
      data: ReturnType<typeof makeData>,
    ): (() => Promise<void>) => {
      switch (kind) {
        case 'subtle': // WebCrypto alone: a fresh IV, the message's bytes, the client's CryptoKey
          return async () => {
            const iv = crypto.getRandomValues(new Uint8Array(12));
            const bytes = encoder.encode(JSON.stringify({ event: 'b', data }));
            await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, client.metadata.cryptoKey, bytes);
            client.socket.send('');
          };
        case 'ecdh': // + roomcast's ECDH.encrypt (base64 of IV and ciphertext, the result object)
          return async () => {
            const message = JSON.stringify({ event: 'b', data });
            await ecdh.encrypt({ message, secret: client.metadata.cryptoKey });
            client.socket.send('');
          };
        case 'transformer': // + the specification's transformer (an async function around it)
          return async () => {
            await transformer({ client, event: 'b', data });
            client.socket.send('');
          };
        default: // + the frame (JSON of the answer) and the socket write: upstream Ignis's delivery
          return async () => {
            const out = await transformer({ client, event: 'b', data });
            client.socket.send(JSON.stringify(out));
          };
      }
    };
    return (seq, count) => {
      for (let m = 0; m < count; m++) {
        const data = makeData(seq + m, 64);
        void executePromiseWithLimit({ tasks: clients.map((client) => task(client, data)), limit: 10 });
      }
    };
  }
  const server = new FakeServer();
  const quiet = () => {};
  const Helper: typeof WebSocketServerHelper =
    kind === 'before'
      ? (
          (await import(`${BEFORE}/server/websocket-server-helper.ts`)) as {
            WebSocketServerHelper: typeof WebSocketServerHelper;
          }
        ).WebSocketServerHelper
      : WebSocketServerHelper;
  const helper: WebSocketServerHelper<{ i: number }, { cryptoKey?: CryptoKey }> = new Helper<
    { i: number },
    { cryptoKey?: CryptoKey }
  >({
    identifier: 'probe',
    server: server as never,
    logger: {
      debug: quiet,
      info: quiet,
      warn: quiet,
      error: (...args) => console.error(...args),
      isLevelEnabled: (level) => level === 'error',
    },
    heartbeatTimeout: 600_000,
    authenticateFn: (data: { i: number }) => ({
      userId: `u${data.i}`,
      metadata: { cryptoKey: cryptoKeys[data.i]! },
    }),
    clientConnectedFn: ({ clientId }) => helper.enableClientEncryption({ clientId }),
    outboundTransformer: transformer as never,
  });
  for (let i = 0; i < CLIENTS; i++) {
    const socket = new CountingSocket(`c${i}`);
    server.attach(socket);
    helper.onClientConnect({ clientId: socket.clientId, socket: socket as never });
    const auth = JSON.stringify({ event: 'authenticate', data: { i } });
    helper.onClientMessage({ clientId: socket.clientId, raw: auth, socket: socket as never });
  }
  await Bun.sleep(50);
  for (let i = 0; i < CLIENTS; i++) helper.joinRoom({ clientId: `c${i}`, room: ROOM });
  await Bun.sleep(200);
  if (helper.getStats().clients !== CLIENTS) throw new Error('not every client was admitted');
  return (seq, count) => {
    for (let m = 0; m < count; m++)
      helper.sendToRoom({ room: ROOM, event: 'b', data: makeData(seq + m, 64) });
  };
}

async function child(kind: TKind): Promise<void> {
  const send = await setUp(kind);
  // Warm-up: one repetition, not measured.
  const rep = async () => {
    for (let seq = 0; seq < MESSAGES; seq += PER_ROUND) {
      const count = Math.min(PER_ROUND, MESSAGES - seq);
      const done = until(written + count * CLIENTS);
      send(seq, count);
      await done;
    }
  };
  await rep();
  Bun.gc(true);
  const before = process.cpuUsage();
  for (let r = 0; r < REPS; r++) await rep();
  const used = process.cpuUsage(before);
  const deliveries = REPS * MESSAGES * CLIENTS;
  console.log(JSON.stringify({ kind, us: (used.user + used.system) / deliveries }));
  process.exit(0);
}

const asChild = process.argv.indexOf('--child');
if (asChild >= 0) {
  await child(process.argv[asChild + 1] as TKind);
} else {
  const results = new Map<TKind, number[]>(KINDS.map((k) => [k, []]));
  for (let set = 0; set < SETS; set++) {
    for (const kind of KINDS) {
      const proc = Bun.spawnSync([
        process.execPath,
        import.meta.path,
        ...process.argv.slice(2),
        '--child',
        kind,
      ]);
      const line = proc.stdout.toString().trim().split('\n').at(-1) ?? '';
      if (proc.exitCode !== 0) throw new Error(`${kind}: ${proc.stderr.toString()}`);
      results.get(kind)!.push((JSON.parse(line) as { us: number }).us);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  let previous = 0;
  for (const [kind, values] of results) {
    const m = median(values);
    const step =
      kind === 'helper' || kind === 'before' ? '' : `  (+${(m - previous).toFixed(2)} over the kind above)`;
    console.log(
      `${kind.padEnd(12)} median ${m.toFixed(2)} µs${step}  sets: ${values.map((v) => v.toFixed(2)).join(' ')}`,
    );
    if (step) previous = m;
  }
  const ratio = (a: TKind) => (median(results.get(a)!) / median(results.get('floor')!)).toFixed(2);
  console.log(
    `helper ÷ floor (medians): ${ratio('helper')}×${BEFORE ? `, before ÷ floor: ${ratio('before')}×` : ''}`,
  );
}
