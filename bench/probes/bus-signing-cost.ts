// Probe: what `busSecret` costs on cross-instance fan-out. One redis-server; two server instances
// (child processes, `rooms` subscriptions), one with busSecret and one without, each with CLIENTS
// WebSocket clients (another child process each) in its own room; an emitter in this process (signing
// or not, as its instance) publishes MESSAGES messages of 64 B to each room in turn, rounds interleaved.
// Measured: the receiving instance's CPU time (user + system) from the first message until its clients
// have them all, per message; and this process's CPU per message published (the emitter's signing).
// Prints the medians and the ratio signed ÷ unsigned. Bounded; writes nothing.
//
//   bun run bench/probes/bus-signing-cost.ts [--clients 100] [--messages 5000] [--rounds 5] [--control]
// The arms run in alternating order. `--control` runs both arms unsigned (an A/A run: the ratio it
// prints is the probe's own noise on this machine).
import { encodeEnvelope } from '../../src/bus/envelope.ts';
import { BusSigner } from '../../src/bus/signing.ts';
import { RedisHelper, silentLogger, WebSocketEmitter, WebSocketServerHelper } from '../../src/index.ts';
import { RedisServer } from '../../test/support/redis-server.ts';

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const ROLE = arg('--role', 'run');
const SECRET = 'bench-bus-secret-0123456789abcdef';

// ------------------------------------------------------------------------------------------ server
async function serve(port: number, signed: boolean): Promise<void> {
  const redis = new RedisHelper({
    name: 'b',
    host: '127.0.0.1',
    port,
    autoConnect: false,
    logger: silentLogger,
  });
  const server = Bun.serve<{ clientId: string }>({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  const helper = new WebSocketServerHelper({
    identifier: 'bench',
    server,
    redisConnection: redis,
    subscriptionMode: 'rooms',
    authenticateFn: () => ({ userId: crypto.randomUUID() }),
    validateRoomFn: ({ rooms }) => rooms,
    logger: silentLogger,
    heartbeatTimeout: 600_000,
    ...(signed ? { busSecret: SECRET } : {}),
  });
  await helper.configure();
  server.reload({
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname === '/cpu') {
        const cpu = process.cpuUsage();
        return Response.json({ us: cpu.user + cpu.system, bus: helper.getStats().bus });
      }
      if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
      return new Response('no', { status: 400 });
    },
    websocket: helper.getBunWebSocketHandler(),
  });
  console.log(JSON.stringify({ port: server.port }));
}

// ----------------------------------------------------------------------------------------- clients
async function clients(url: string, count: number, room: string): Promise<void> {
  let received = 0;
  let target = Number.POSITIVE_INFINITY;
  const report = () => {
    if (received >= target) {
      console.log(JSON.stringify({ done: received }));
      target = Number.POSITIVE_INFINITY;
    }
  };
  await Promise.all(
    Array.from({ length: count }, async () => {
      const ws = new WebSocket(url);
      await new Promise<void>((resolve, reject) => {
        ws.onerror = () => reject(new Error('connect failed'));
        ws.onmessage = (e) => {
          const frame = JSON.parse(String(e.data)) as { event: string };
          if (frame.event === 'connected')
            ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] } }));
          else if (frame.event === 'join') resolve();
          else if (frame.event === 'm') {
            received++;
            report();
          }
        };
        ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: {} }));
      });
    }),
  );
  console.log(JSON.stringify({ ready: count }));
  // The parent announces each round's total on stdin: `<messages per client>\n`.
  const stdin = Bun.stdin.stream().getReader();
  for (;;) {
    const { value: chunk, done } = await stdin.read();
    if (done) break;
    for (const line of new TextDecoder().decode(chunk).split('\n')) {
      if (line.trim() === '') continue;
      received = 0;
      target = Number(line) * count;
      console.log(JSON.stringify({ armed: target }));
    }
  }
}

// ------------------------------------------------------------------------------------------- run
interface IChild {
  proc: ReturnType<typeof Bun.spawn>;
  next(): Promise<Record<string, unknown>>;
}

function spawn(args: string[]): IChild {
  const proc = Bun.spawn([process.execPath, import.meta.path, ...args], {
    stdout: 'pipe',
    stdin: 'pipe',
    stderr: 'inherit',
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  void (async () => {
    let buffered = '';
    const stdout = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { value: chunk, done } = await stdout.read();
      if (done) break;
      buffered += new TextDecoder().decode(chunk);
      let at = buffered.indexOf('\n');
      while (at >= 0) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        if (line.startsWith('{')) lines.push(JSON.parse(line));
        waiters.splice(0).forEach((wake) => {
          wake();
        });
        at = buffered.indexOf('\n');
      }
    }
  })();
  return {
    proc,
    async next() {
      while (lines.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return lines.shift()!;
    },
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function run(): Promise<void> {
  const clientCount = Number(arg('--clients', '100'));
  const messages = Number(arg('--messages', '5000'));
  const rounds = Number(arg('--rounds', '5'));
  const redis = await RedisServer.start();
  const arms = [] as Array<{
    signed: boolean;
    server: IChild;
    clients: IChild;
    port: number;
    emitter: WebSocketEmitter;
    redisHelper: RedisHelper;
    serverUs: number[];
    emitterUs: number[];
  }>;
  try {
    const control = process.argv.includes('--control');
    for (const signed of [false, true]) {
      const server = spawn([
        '--role',
        'server',
        '--redis',
        String(redis.port),
        '--signed',
        String(signed && !control),
      ]);
      const { port } = (await server.next()) as { port: number };
      const room = signed ? 'signed' : 'unsigned';
      const clients = spawn([
        '--role',
        'clients',
        '--url',
        `ws://127.0.0.1:${port}/ws`,
        '--count',
        String(clientCount),
        '--room',
        room,
      ]);
      await clients.next();
      const redisHelper = new RedisHelper({
        name: 'e',
        host: '127.0.0.1',
        port: redis.port,
        logger: silentLogger,
      });
      const emitter = new WebSocketEmitter({
        redisConnection: redisHelper,
        logger: silentLogger,
        ...(signed && !control ? { busSecret: SECRET } : {}),
      });
      await emitter.configure();
      arms.push({ signed, server, clients, port, emitter, redisHelper, serverUs: [], emitterUs: [] });
    }
    const payload = { s: 0, p: 'x'.repeat(52) };
    // One warm-up round each, then the measured ones, alternating.
    for (let round = 0; round <= rounds; round++) {
      for (const arm of round % 2 === 0 ? arms : [...arms].reverse()) {
        const room = arm.signed ? 'signed' : 'unsigned';
        (arm.clients.proc.stdin as import('bun').FileSink).write(`${messages}\n`);
        (arm.clients.proc.stdin as import('bun').FileSink).flush();
        await arm.clients.next(); // armed
        const cpu = async () =>
          ((await (await fetch(`http://127.0.0.1:${arm.port}/cpu`)).json()) as { us: number }).us;
        const before = await cpu();
        const own = process.cpuUsage();
        for (let i = 0; i < messages; i += 100) {
          const batch: Array<Promise<unknown>> = [];
          for (let j = i; j < Math.min(messages, i + 100); j++) {
            payload.s = j;
            batch.push(arm.emitter.toRoom({ room, event: 'm', data: payload }));
          }
          await Promise.all(batch);
        }
        const mine = process.cpuUsage(own);
        await arm.clients.next(); // done
        const after = await cpu();
        if (round === 0) continue;
        arm.serverUs.push((after - before) / messages);
        arm.emitterUs.push((mine.user + mine.system) / messages);
      }
    }
    const [off, on] = arms as [(typeof arms)[0], (typeof arms)[0]];
    const stats = (await (await fetch(`http://127.0.0.1:${on.port}/cpu`)).json()) as { bus: unknown };
    const fmt = (n: number) => n.toFixed(2);
    const spread = (values: number[]) => `[${values.map(fmt).join(', ')}]`;
    console.log(
      `cross-instance fan-out, ${clientCount} clients per message, ${messages} messages x ${rounds} rounds (median):`,
    );
    console.log(
      `  receiving instance CPU per message: unsigned ${fmt(median(off.serverUs))} us, signed ${fmt(median(on.serverUs))} us, ratio ${(median(on.serverUs) / median(off.serverUs)).toFixed(3)}x`,
    );
    console.log(
      `  emitter CPU per message published:  unsigned ${fmt(median(off.emitterUs))} us, signed ${fmt(median(on.emitterUs))} us, ratio ${(median(on.emitterUs) / median(off.emitterUs)).toFixed(3)}x`,
    );
    // The signature's own work, timed in this process (steadier than the whole-process difference).
    const signer = new BusSigner([SECRET]);
    const envelope = encodeEnvelope(
      { serverId: 'emitter', type: 'room', target: 'signed', event: 'm', data: payload },
      JSON.stringify(payload),
    );
    const sealed = signer.sign(envelope);
    const timeUs = (fn: () => unknown): number => {
      for (let i = 0; i < 10_000; i++) fn();
      const start = performance.now();
      for (let i = 0; i < 200_000; i++) fn();
      return ((performance.now() - start) * 1000) / 200_000;
    };
    const verifyUs = timeUs(() => signer.verify(sealed));
    const signUs = timeUs(() => signer.sign(envelope));
    const implied = (median(off.serverUs) + verifyUs) / median(off.serverUs);
    console.log(
      `  in process: verify ${fmt(verifyUs)} us, sign ${fmt(signUs)} us per message; receiving ratio implied by verify ${implied.toFixed(3)}x`,
    );
    console.log(
      `  rounds, receiving instance: unsigned ${spread(off.serverUs)}, signed ${spread(on.serverUs)}`,
    );
    console.log(`  signed instance bus stats: ${JSON.stringify(stats.bus)}`);
  } finally {
    for (const arm of arms) {
      await arm.emitter.shutdown();
      await arm.redisHelper.disconnect();
      arm.clients.proc.kill();
      arm.server.proc.kill();
    }
    await redis.stop();
  }
}

if (ROLE === 'server') await serve(Number(arg('--redis', '0')), arg('--signed', 'false') === 'true');
else if (ROLE === 'clients') await clients(arg('--url', ''), Number(arg('--count', '1')), arg('--room', 'r'));
else await run();
