// Probe: what the server router (`on()` / `use()`) costs per inbound request, and that it costs
// nothing while unused. A WebSocketServerHelper on fake sockets (test/support/fake-socket.ts: no
// network, no native work), 1,000 authenticated clients, each sending request frames through
// `onClientMessage` exactly as Bun's message callback does; `messageHandler` answers every one
// (sync), so each frame is decoded, routed, answered and serialized. Kinds:
//   before  the helper of another source tree (`--before DIR`, e.g. the commit before the router)
//   off     this tree, nothing registered with on() / use() (what every existing application runs)
//   router  this tree, one no-op use() and the event answered by on() instead of messageHandler
// Each kind runs alone in a child process (in one process the kinds would share the engine's
// type feedback and slow each other down), the kinds one after the other in a rotating order, `--sets`
// times. A child prints the median of its rounds after the first two, in CPU µs per request (its own
// user + system time, so the machine's other load moves it less); the parent, the median of the sets.
// Writes nothing.
//   git archive <commit> src | tar -x -C /tmp/roomcast-before
//   bun run bench/probes/router-cost.ts --before /tmp/roomcast-before/src [--frames 100000] [--rounds 7] [--sets 5]
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
const ROUNDS = count('--rounds', 7);
const SETS = count('--sets', 5);
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

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const only = arg('--kind');

if (only !== undefined) {
  // A child: one kind, alone in its process (one helper class, one call shape, as in an application).
  const Helper =
    only === 'before'
      ? (
          (await import(resolve(before ?? '', 'server/websocket-server-helper.ts'))) as {
            WebSocketServerHelper: THelperClass;
          }
        ).WebSocketServerHelper
      : current;
  const setup = make(Helper, only === 'router');
  const samples: number[] = [];
  // The first two rounds run code the engine is still optimizing; the median of the rest is the figure.
  for (let r = 0; r < ROUNDS; r++) {
    const us = round(setup);
    if (r >= 2) samples.push(us);
  }
  await setup.helper.shutdown();
  console.log(JSON.stringify({ kind: only, us: median(samples) }));
} else {
  // The parent: every kind in a process of its own, one after the other, in a rotating order, SETS times.
  const kinds = before ? ['before', 'off', 'router'] : ['off', 'router'];
  const figures = new Map<string, number[]>(kinds.map((kind) => [kind, []]));
  for (let set = 0; set < SETS; set++) {
    const line: string[] = [];
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(k + set) % kinds.length]!;
      const args = [
        'run',
        import.meta.path,
        '--kind',
        kind,
        '--frames',
        String(FRAMES),
        '--rounds',
        String(ROUNDS),
      ];
      if (before) args.push('--before', before);
      const child = Bun.spawnSync([process.execPath, ...args], { stderr: 'inherit' });
      const { us } = JSON.parse(child.stdout.toString().trim().split('\n').at(-1)!) as { us: number };
      figures.get(kind)!.push(us);
      line.push(`${kind} ${us.toFixed(3)}`);
    }
    console.log(`set ${set + 1}: ${line.join(', ')} µs per request`);
  }
  // Kinds that ran next to each other shared the machine's load best: the median of each set's ratio.
  if (before) {
    const ratio = (kind: string) =>
      median(figures.get(kind)!.map((us, set) => us / figures.get('before')![set]!));
    console.log(
      `median of the ${SETS} sets' ratios to before: off ${ratio('off').toFixed(3)}×, router ${ratio('router').toFixed(3)}×`,
    );
  }
  // The median, and the fastest set (the one the machine's other load disturbed least).
  for (const [label, pick] of [
    [`median of ${SETS} sets`, median],
    [`fastest of ${SETS} sets`, (values: number[]) => Math.min(...values)],
  ] as const) {
    const result = new Map([...figures].map(([kind, values]) => [kind, pick(values)]));
    const base = result.get('before');
    const vs = (kind: string) => `${kind} ${(((result.get(kind)! - base!) / base!) * 100).toFixed(1)} %`;
    console.log(
      `${label} (${FRAMES} requests per round, ${CLIENTS} clients, CPU µs per request): ` +
        [...result].map(([kind, us]) => `${kind} ${us.toFixed(3)}`).join(', ') +
        (base === undefined ? '' : `; against before: ${vs('off')}, ${vs('router')}`),
    );
  }
}
