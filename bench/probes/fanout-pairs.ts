// Probe: plain room fan-out the way an outside harness measures it, apart from the benchmark's own
// servers and clients. 2,000 WebSocket clients in child processes join one room; the server sends
// 2,000 messages of 64 B to it; the server process's CPU (user + system, all its threads) from the
// first message until every client has every message, per delivered message. Raw Bun and the helper
// run in interleaved pairs (a fresh server and fresh connections each time), median of the rounds.
// Kinds:
//   raw-frame  raw Bun sending the helper's frame bytes, `{"event":"b","data":<64 B>}`
//   raw-bare   raw Bun sending the bare 64-byte payload
//   raw-seeds  raw-frame whose sockets also hold the four topics the helper's hold (the client id, the
//              broadcast topic, the two default rooms; Bun's publish works per subscription)
//   helper     WebSocketServerHelper with its defaults (heartbeat sweep every 30 s, 90 s timeout)
//   helper-10m the helper with the benchmark's setting (heartbeatTimeout 10 minutes)
//   helper-send the helper over Redis (defaults), each message through send({ destination: room }):
//              delivered here and published for the other instances (and heard back, then skipped)
//   bun run bench/probes/fanout-pairs.ts [--clients 2000] [--messages 2000] [--rounds 3]
//     [--kinds raw-frame,raw-bare,raw-seeds,helper,helper-10m] [--procs 4] [--batch 100]

import type { Subprocess } from 'bun';
import { startRedis, stopAll } from '../lib/procs.ts';

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const ROLE = arg('--role') ?? 'run';
const ROOM = 'pairs';
const EVENT = 'b';
const PAYLOAD_BYTES = 64;

/** The 64-byte JSON payload of message `seq`: `{"s":seq,"p":"xx…"}`. */
function payloadOf(seq: number): { s: number; p: string } {
  const bare = `{"s":${seq},"p":""}`.length;
  return { s: seq, p: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - bare)) };
}

type TKind = 'raw-frame' | 'raw-bare' | 'raw-seeds' | 'helper' | 'helper-10m' | 'helper-send';
const SEED_TOPICS = ['ws-default', 'ws-notification', 'ws:internal:broadcast'];

// ---------------------------------------------------------------------------------------- server
async function serve(kind: TKind): Promise<void> {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  let publish: (seq: number) => void;
  let websocket: unknown;
  let data: () => object;
  let members: () => number;
  if (kind.startsWith('raw')) {
    const seeds = kind === 'raw-seeds';
    // The helper's Bun settings (its defaults), so only the code differs.
    let joined = 0;
    websocket = {
      maxPayloadLength: 128 * 1024,
      idleTimeout: 60,
      backpressureLimit: 1024 * 1024,
      sendPings: true,
      publishToSelf: false,
      message(
        socket: { data: { id: string }; subscribe(t: string): void; send(s: string): number },
        message: string | Buffer,
      ) {
        const frame = JSON.parse(String(message)) as { event: string; id?: string };
        if (frame.event === 'authenticate') {
          if (seeds) for (const topic of [socket.data.id, ...SEED_TOPICS]) socket.subscribe(topic);
          socket.send(JSON.stringify({ event: 'connected', data: {} }));
        } else if (frame.event === 'join') {
          socket.subscribe(ROOM);
          joined++;
          socket.send(JSON.stringify({ event: 'join', data: { rooms: [ROOM] }, id: frame.id }));
        }
      },
      close() {
        joined--;
      },
    };
    data = () => ({ id: crypto.randomUUID() });
    members = () => joined;
    const bare = kind === 'raw-bare';
    publish = (seq) => {
      const payload = payloadOf(seq);
      server.publish(ROOM, bare ? JSON.stringify(payload) : JSON.stringify({ event: EVENT, data: payload }));
    };
  } else {
    const { WebSocketServerHelper } = await import('../../src/server/websocket-server-helper.ts');
    const { silentLogger } = await import('../../src/common/logger.ts');
    const { RedisHelper } = await import('../../src/redis/redis-helper.ts');
    const redisPort = Number(arg('--redis-port'));
    const viaRedis = kind === 'helper-send';
    const helper = new WebSocketServerHelper<{ token?: string }>({
      identifier: 'pairs',
      server,
      ...(viaRedis
        ? {
            redisConnection: new RedisHelper({
              name: 'pairs',
              host: '127.0.0.1',
              port: redisPort,
              autoConnect: false,
              logger: silentLogger,
            }),
          }
        : {}),
      logger: silentLogger,
      authenticateFn: (auth) => (auth.token === 'ok' ? { userId: 'u' } : null),
      validateRoomFn: ({ rooms }) => rooms,
      ...(kind === 'helper-10m' ? { heartbeatTimeout: 600_000 } : {}),
    });
    await helper.configure();
    websocket = helper.getBunWebSocketHandler();
    data = () => ({ clientId: crypto.randomUUID() });
    members = () => helper.getClientsByRoom({ room: ROOM }).length;
    publish = viaRedis
      ? (seq) => helper.send({ destination: ROOM, payload: { topic: EVENT, data: payloadOf(seq) } })
      : (seq) => helper.sendToRoom({ room: ROOM, event: EVENT, data: payloadOf(seq) });
  }
  let cpuAtStart = process.cpuUsage();
  server.reload({
    async fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname === '/ws') {
        return srv.upgrade(req, { data: data() as never }) ? undefined : new Response('no', { status: 500 });
      }
      if (url.pathname === '/members') return Response.json(members());
      if (url.pathname === '/go') {
        // Messages in batches, a macrotask between them, so the sockets' buffers drain as they go.
        const messages = Number(url.searchParams.get('n'));
        const batch = Number(url.searchParams.get('batch'));
        cpuAtStart = process.cpuUsage();
        for (let seq = 0; seq < messages; seq += batch) {
          for (let i = seq; i < Math.min(messages, seq + batch); i++) publish(i);
          await new Promise((resolve) => setImmediate(resolve));
        }
        return Response.json('sent');
      }
      if (url.pathname === '/cpu') {
        const { user, system } = process.cpuUsage(cpuAtStart);
        return Response.json(user + system);
      }
      return new Response('not found', { status: 404 });
    },
    websocket: websocket as never,
  });
  console.log(`READY ${server.port}`);
}

// ---------------------------------------------------------------------------------------- client
function client(): void {
  let expected = 0;
  let pending = 0;
  const received: number[] = [];
  process.on('message', (message: { cmd: string; url?: string; count?: number; expect?: number }) => {
    if (message.cmd === 'connect') {
      let ready = 0;
      for (let i = 0; i < message.count!; i++) {
        const index = received.push(-1) - 1;
        const socket = new WebSocket(message.url!);
        socket.onopen = () => socket.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
        socket.onerror = () => process.send?.({ error: 'socket error' });
        socket.onmessage = (event) => {
          const text = String(event.data);
          if (received[index]! >= 0) {
            if (++received[index]! === expected && --pending === 0) process.send?.({ done: true });
          } else if (text.startsWith('{"event":"connected"')) {
            socket.send(JSON.stringify({ event: 'join', data: { rooms: [ROOM] }, id: 'j' }));
          } else if (text.startsWith('{"event":"join"')) {
            received[index] = 0;
            if (++ready === message.count) process.send?.({ ready: true });
          }
        };
      }
    } else if (message.cmd === 'arm') {
      expected = message.expect!;
      pending = received.length;
      for (let i = 0; i < received.length; i++) received[i] = 0;
    } else if (message.cmd === 'exit') process.exit(0);
  });
}

// ---------------------------------------------------------------------------------- orchestrator
async function run(): Promise<void> {
  const CLIENTS = Number(arg('--clients') ?? 2_000);
  const MESSAGES = Number(arg('--messages') ?? 2_000);
  const ROUNDS = Number(arg('--rounds') ?? 3);
  const PROCS = Number(arg('--procs') ?? 4);
  const BATCH = Number(arg('--batch') ?? 100);
  const KINDS = (arg('--kinds') ?? 'raw-frame,raw-bare,raw-seeds,helper,helper-10m').split(',') as TKind[];
  const self = new URL(import.meta.url).pathname;
  const redis = KINDS.includes('helper-send') ? await startRedis() : undefined;
  const children = new Set<Subprocess>();
  const spawn = (role: string[], ipc?: (message: Record<string, unknown>) => void) => {
    const proc = Bun.spawn([process.execPath, self, ...role], {
      stdout: 'pipe',
      stderr: 'inherit',
      ...(ipc ? { ipc } : {}),
    });
    children.add(proc);
    return proc;
  };

  async function once(kind: TKind): Promise<{ cpuUs: number; ms: number }> {
    const server = spawn(['--role', 'server', '--kind', kind, '--redis-port', String(redis?.port ?? 0)]);
    const reader = server.stdout.getReader();
    let out = '';
    while (!out.includes('\n')) out += new TextDecoder().decode((await reader.read()).value);
    const port = Number(/READY (\d+)/.exec(out)?.[1]);
    const base = `http://127.0.0.1:${port}`;
    let ready = 0;
    let done = 0;
    let failure: string | undefined;
    const clients = Array.from({ length: PROCS }, () =>
      spawn(['--role', 'client'], (message) => {
        if (message.ready) ready++;
        if (message.done) done++;
        if (message.error) failure = String(message.error);
      }),
    );
    try {
      const share = Math.ceil(CLIENTS / PROCS);
      clients.forEach((c, i) => {
        c.send({
          cmd: 'connect',
          url: `ws://127.0.0.1:${port}/ws`,
          count: Math.min(share, CLIENTS - i * share),
        });
      });
      const until = async (what: string, ok: () => boolean, ms: number) => {
        const deadline = Date.now() + ms;
        while (!ok()) {
          if (failure) throw new Error(`${kind}: ${failure}`);
          if (Date.now() > deadline) throw new Error(`${kind}: ${what} timed out`);
          await Bun.sleep(5);
        }
      };
      await until('connect', () => ready === PROCS, 60_000);
      if ((await (await fetch(`${base}/members`)).json()) !== CLIENTS)
        throw new Error(`${kind}: not all joined`);
      for (const c of clients) c.send({ cmd: 'arm', expect: MESSAGES });
      await Bun.sleep(200); // the arm reaches every client process before the first message
      const started = performance.now();
      await fetch(`${base}/go?n=${MESSAGES}&batch=${BATCH}`);
      await until('delivery', () => done === PROCS, 120_000);
      const ms = performance.now() - started;
      const cpuUs = (await (await fetch(`${base}/cpu`)).json()) as number;
      return { cpuUs, ms };
    } finally {
      for (const c of clients) c.kill();
      server.kill();
      await Promise.all([...clients, server].map((p) => p.exited));
      for (const p of [...clients, server]) children.delete(p);
    }
  }

  const results = new Map<TKind, { cpuUs: number; ms: number }[]>(KINDS.map((k) => [k, []]));
  const deliveries = CLIENTS * MESSAGES;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so no kind always runs first (or last) in a round.
      const order = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]!);
      for (const kind of order) {
        const result = await once(kind);
        results.get(kind)!.push(result);
        console.log(
          `round ${r + 1} ${kind.padEnd(10)} ${((result.cpuUs * 1000) / deliveries).toFixed(1)} ns CPU/delivery  ${Math.round(result.ms)} ms`,
        );
      }
    }
  } finally {
    for (const p of children) p.kill('SIGKILL');
    await stopAll(); // the Redis, if one was started
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const perDelivery = (kind: TKind) => (median(results.get(kind)!.map((r) => r.cpuUs)) * 1000) / deliveries;
  console.log(
    `\n${CLIENTS} clients × ${MESSAGES} messages of ${PAYLOAD_BYTES} B, median of ${ROUNDS} rounds:`,
  );
  for (const kind of KINDS)
    console.log(`${kind.padEnd(10)} ${perDelivery(kind).toFixed(1)} ns server CPU per delivery`);
  for (const helper of KINDS.filter((k) => k.startsWith('helper'))) {
    for (const raw of KINDS.filter((k) => k.startsWith('raw'))) {
      console.log(`${helper} ÷ ${raw}: ${(perDelivery(helper) / perDelivery(raw)).toFixed(3)}×`);
    }
  }
}

if (ROLE === 'server') await serve((arg('--kind') ?? 'raw-frame') as TKind);
else if (ROLE === 'client') client();
else await run();
