// Probe: what the server router (`on()` / `use()`) costs per inbound request, and that it costs
// nothing while unused. A WebSocketServerHelper on fake sockets (test/support/fake-socket.ts: no
// network, no native work), 1,000 authenticated clients, each sending request frames through
// `onClientMessage` exactly as Bun's message callback does; `messageHandler` answers every one
// (sync), so each frame is decoded, routed, answered and serialized. Kinds, interleaved by round:
//   before  the helper of another source tree (`--before DIR`, e.g. the commit before the router)
//   off     this tree, nothing registered with on() / use() (what every existing application runs)
//   router  this tree, one no-op use() and the event answered by on() instead of messageHandler
// Prints CPU µs per request (this process's user + system time), the median of the rounds after the first two. Writes nothing.
//   git archive <commit> src | tar -x -C /tmp/roomcast-before
//   bun run bench/probes/router-cost.ts --before /tmp/roomcast-before/src [--frames 100000] [--rounds 15]
import { resolve } from 'node:path';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { FakeServer, FakeSocket } from '../../test/support/fake-socket.ts';

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const count = (name: string, fallback: number): number => {
  const value = Number(arg(name));
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const FRAMES = count('--frames', 100_000);
const ROUNDS = count('--rounds', 15);
const CLIENTS = 1_000;
const before = arg('--before');

// The tree of `--before` has neither on() nor use(): both are optional here.
type THelper = Pick<
  WebSocketServerHelper,
  'onClientConnect' | 'onClientMessage' | 'getStats' | 'shutdown'
> & {
  on?: (event: string, handler: (context: { data: unknown }) => unknown) => unknown;
  use?: (middleware: () => unknown) => unknown;
};
type THelperClass = new (opts: ConstructorParameters<typeof WebSocketServerHelper>[0]) => THelper;
const current = WebSocketServerHelper as unknown as THelperClass;

const quiet = () => {};
function make(Helper: THelperClass, router: boolean): { helper: THelper; sockets: FakeSocket[] } {
  const helper = new Helper({
    identifier: 'probe',
    server: new FakeServer() as never,
    logger: {
      debug: quiet,
      info: quiet,
      warn: quiet,
      error: (...args) => console.error(...args),
      isLevelEnabled: (level) => level === 'error',
    },
    heartbeatTimeout: 600_000,
    limits: false,
    authenticateFn: () => ({ userId: 'u' }),
    messageHandler: ({ message }) => message.data,
  });
  if (router) {
    helper.use?.(() => undefined);
    helper.on?.('echo', ({ data }) => data);
  }
  const sockets = Array.from({ length: CLIENTS }, () => new FakeSocket(crypto.randomUUID()));
  const auth = JSON.stringify({ event: 'authenticate', data: {} });
  for (const socket of sockets) {
    helper.onClientConnect({ clientId: socket.clientId, socket: socket as never });
    helper.onClientMessage({ clientId: socket.clientId, raw: auth, socket: socket as never });
  }
  if (helper.getStats().clients !== CLIENTS) throw new Error('not every client was admitted');
  return { helper, sockets };
}

const frames = Array.from({ length: 64 }, (_, i) =>
  JSON.stringify({ event: 'echo', id: `r${i}`, data: { n: i, text: 'hello there' } }),
);

function round({ helper, sockets }: { helper: THelper; sockets: FakeSocket[] }): number {
  const sentBefore = sockets.reduce((sum, s) => sum + s.sent, 0);
  // CPU time of this process, not wall time: the figure must not move with the machine's other load.
  const started = process.cpuUsage();
  for (let i = 0; i < FRAMES; i++) {
    const socket = sockets[i % CLIENTS]!;
    helper.onClientMessage({ clientId: socket.clientId, raw: frames[i & 63], socket: socket as never });
  }
  const spent = process.cpuUsage(started);
  const us = (spent.user + spent.system) / FRAMES;
  // Every request was answered (synchronously): a probe that measured dropped frames would lie.
  const answered = sockets.reduce((sum, s) => sum + s.sent, 0) - sentBefore;
  if (answered !== FRAMES) throw new Error(`${answered} answers for ${FRAMES} requests`);
  return us;
}

const kinds: Array<[string, ReturnType<typeof make>]> = [];
if (before) {
  const module = (await import(resolve(before, 'server/websocket-server-helper.ts'))) as {
    WebSocketServerHelper: THelperClass;
  };
  kinds.push(['before', make(module.WebSocketServerHelper, false)]);
}
kinds.push(['off', make(current, false)], ['router', make(current, true)]);

const samples = new Map<string, number[]>(kinds.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round so no kind always runs first or last.
  const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]!);
  const line: string[] = [];
  for (const [name, setup] of order) {
    const us = round(setup);
    if (r >= 2) samples.get(name)!.push(us);
    line.push(`${name} ${us.toFixed(3)}`);
  }
  console.log(`round ${r + 1}: ${line.join(', ')} µs per request`);
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
// The median, and the fastest round (the least disturbed by other load on the machine).
for (const [label, pick] of [
  ['median', median],
  ['fastest', (values: number[]) => Math.min(...values)],
] as const) {
  const figures = new Map([...samples].map(([name, values]) => [name, pick(values)]));
  const shown = [...figures].map(([name, us]) => `${name} ${us.toFixed(3)} µs`).join(', ');
  const base = figures.get('before');
  const vs = (name: string) => `${name} ${(((figures.get(name)! - base!) / base!) * 100).toFixed(1)} %`;
  console.log(
    `${label} of rounds 3-${ROUNDS} (${FRAMES} requests per round, ${CLIENTS} clients): ${shown}` +
      (base === undefined ? '' : `; against before: ${vs('off')}, ${vs('router')}`),
  );
}
for (const [, setup] of kinds) await setup.helper.shutdown();
