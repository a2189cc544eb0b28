// A load-generating client process: holds thousands of WebSocket connections
// (Bun's own client) and counts what they receive. The hot path parses nothing:
// it checks the frame's prefix and reads the sequence number digit by digit.
// Socket.IO is spoken directly (Engine.IO v4 over a WebSocket), so every server
// kind is measured with the same client code.

import { ECDH } from '../../src/crypto/ecdh.ts';
import { Histogram } from '../lib/histogram.ts';
import type { TClientCommand, TClientReply, TCountMode } from '../lib/ipc.ts';
import { framePrefix, nowMs, protocolOf, type TProtocol } from '../lib/shared.ts';

interface ISock {
  ws: WebSocket;
  index: number;
  id: string;
  /** Next expected sequence number (or, encrypted, frames counted so far). */
  next: number;
  member: boolean;
  /** Set while a setup step (authenticate, join) waits for its answer. */
  waiter?: (frame: string) => void;
  /** Only for the few sockets that decrypt what they receive. */
  key?: CryptoKey;
  /** Authenticated with a key: every frame after `connected` comes encrypted. */
  encrypted?: boolean;
  decryptChain?: Promise<void>;
}

const ENCRYPTED_PREFIX = '{"event":"encrypted","data":';
/** Sockets per process that decrypt and check order in the encrypted workload. */
const DECRYPT_SAMPLE = 4;

/** The protocol of the kind under test (a variant speaks its base server's protocol). */
let kind: TProtocol = 'raw';
let prefix = framePrefix(kind);
let socks: ISock[] = [];
let mode: TCountMode = 'plain';
let upto = 0;
let reached = 0;
let members = 0;
let onReached: (() => void) | undefined;
const histogram = new Histogram();
const ecdh = ECDH.withAlgorithm();
const counters = {
  stray: 0,
  malformed: 0,
  outOfOrder: 0,
  behind: 0,
  closed: 0,
  decryptErrors: 0,
  encryptedOutOfOrder: 0,
  decrypted: 0,
};
let counting = false;

function send(reply: TClientReply): void {
  process.send?.(reply);
}

function onFrame(sock: ISock, text: string): void {
  if (sock.waiter) {
    sock.waiter(text);
    return;
  }
  if (text === '2' && kind === 'socketio') {
    sock.ws.send('3'); // Engine.IO ping
    return;
  }
  if (!sock.member) {
    counters.stray++;
    return;
  }
  if (mode === 'encrypted') {
    if (!text.startsWith(ENCRYPTED_PREFIX)) {
      counters.malformed++;
      return;
    }
    if (sock.key) checkEncrypted(sock, text, sock.next);
    if (++sock.next === upto) arrive();
    return;
  }
  if (!text.startsWith(prefix)) {
    counters.malformed++;
    return;
  }
  let i = prefix.length;
  let seq = 0;
  let c = text.charCodeAt(i);
  while (c >= 48 && c <= 57) {
    seq = seq * 10 + c - 48;
    c = text.charCodeAt(++i);
  }
  if (seq !== sock.next) outOfOrder(sock, seq, text);
  sock.next = seq + 1;
  // `,"t":` follows the sequence number.
  if (mode === 'latency') histogram.record(nowMs() - Number.parseFloat(text.slice(i + 5, i + 32)));
  if (sock.next === upto) arrive();
}

/** The first anomaly of a workload, kept so a FAILED line can say what happened. */
let firstAnomaly: string | undefined;

function outOfOrder(sock: ISock, seq: number, text: string): void {
  counters.outOfOrder++;
  if (seq < sock.next) counters.behind++;
  firstAnomaly ??= `socket ${sock.index} expected ${sock.next}, got ${seq}: ${text.slice(0, 60)}…${text.slice(-90)}`;
}

function arrive(): void {
  reached++;
  if (reached === members && onReached) {
    const done = onReached;
    onReached = undefined;
    done();
  }
}

/** Decrypts in arrival order and checks the sequence number inside. */
function checkEncrypted(sock: ISock, text: string, expected: number): void {
  const key = sock.key!;
  const previous = sock.decryptChain ?? Promise.resolve();
  sock.decryptChain = previous.then(async () => {
    try {
      const envelope = JSON.parse(text) as { data: { iv: string; ct: string } };
      const plain = await ecdh.decrypt({ message: envelope.data, secret: key });
      const inner = JSON.parse(plain) as { event: string; data: { s: number } };
      if (inner.data.s !== expected) counters.encryptedOutOfOrder++;
      counters.decrypted++;
    } catch {
      counters.decryptErrors++;
    }
  });
}

function wait(
  sock: ISock,
  accept: (frame: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.waiter = undefined;
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.waiter = (frame) => {
      if (kind === 'socketio' && frame === '2') {
        sock.ws.send('3');
        return;
      }
      if (!accept(frame)) {
        clearTimeout(timer);
        sock.waiter = undefined;
        reject(new Error(`${what}: unexpected frame ${frame.slice(0, 120)}`));
        return;
      }
      clearTimeout(timer);
      sock.waiter = undefined;
      resolve(frame);
    };
  });
}

async function connectOne(url: string, index: number, tag: string, encrypted: boolean): Promise<ISock> {
  const ws = new WebSocket(url);
  const sock: ISock = { ws, index, id: '', next: 0, member: false, encrypted };
  let keyB64: string | undefined;
  if (encrypted) {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    keyB64 = Buffer.from(raw).toString('base64');
    if (index < DECRYPT_SAMPLE) {
      sock.key = await crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['decrypt']);
    }
  }
  const auth: Record<string, string> = { token: 'ok', user: `u${tag}-${index}` };
  if (keyB64) auth.key = keyB64;

  const closedEarly = new Promise<never>((_, reject) => {
    ws.onclose = (event) => {
      if (counting) counters.closed++;
      reject(new Error(`closed during setup (${event.code} ${event.reason})`));
    };
  });
  closedEarly.catch(() => {});
  ws.onmessage = (event) => onFrame(sock, event.data as string);

  if (kind === 'socketio') {
    // Engine.IO open packet, then a Socket.IO CONNECT carrying the auth payload.
    const opened = wait(sock, (f) => f.startsWith('0{'), 15_000, 'engine.io open');
    await Promise.race([opened, closedEarly]);
    const connected = wait(sock, (f) => f.startsWith('40{'), 15_000, 'socket.io connect');
    ws.send(`40${JSON.stringify(auth)}`);
    const frame = await Promise.race([connected, closedEarly]);
    sock.id = (JSON.parse(frame.slice(2)) as { sid: string }).sid;
  } else {
    await Promise.race([
      new Promise<void>((resolve) => {
        ws.onopen = () => resolve();
      }),
      closedEarly,
    ]);
    const connected = wait(sock, (f) => f.startsWith('{"event":"connected"'), 15_000, 'authenticate');
    ws.send(JSON.stringify({ event: 'authenticate', data: auth }));
    const frame = await Promise.race([connected, closedEarly]);
    sock.id = (JSON.parse(frame) as { data: { id: string } }).data.id;
  }
  ws.onclose = () => {
    if (counting) counters.closed++;
  };
  return sock;
}

async function connect(cmd: Extract<TClientCommand, { cmd: 'connect' }>): Promise<TClientReply> {
  kind = protocolOf(cmd.kind);
  prefix = framePrefix(kind);
  const started = performance.now();
  const made: ISock[] = new Array(cmd.count);
  let nextIndex = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (nextIndex < cmd.count) {
      const index = nextIndex++;
      try {
        made[index] = await connectOne(cmd.url, index, cmd.tag, cmd.encrypted);
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, worker));
  const ms = performance.now() - started;
  socks = made.filter((s): s is ISock => s !== undefined);
  return {
    ok: failed === 0,
    connected: socks.length,
    failed,
    ms,
    firstId: socks[0]?.id,
    error: firstError,
  };
}

async function join(cmd: Extract<TClientCommand, { cmd: 'join' }>): Promise<TClientReply> {
  const targets = socks.slice(cmd.from, cmd.to);
  const results = await Promise.allSettled(
    targets.map((sock) => {
      if (kind === 'socketio') {
        const answer = wait(sock, (f) => f.startsWith('431['), 15_000, 'join');
        sock.ws.send(`421${JSON.stringify(['join', [cmd.room]])}`);
        return answer;
      }
      if (kind === 'ignis') {
        // Upstream Ignis answers a join with nothing; the orchestrator waits for the room to fill instead.
        sock.ws.send(JSON.stringify({ event: 'join', data: { rooms: [cmd.room] } }));
        return Promise.resolve('');
      }
      // An encrypted client gets its join answer through the transformer, like every frame after `connected`.
      const answer = wait(
        sock,
        (f) => f.startsWith('{"event":"join"') || (sock.encrypted === true && f.startsWith(ENCRYPTED_PREFIX)),
        15_000,
        'join',
      );
      sock.ws.send(JSON.stringify({ event: 'join', data: { rooms: [cmd.room] } }));
      return answer;
    }),
  );
  const failures = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  return {
    ok: failures.length === 0,
    error: failures[0] ? String((failures[0].reason as Error).message) : undefined,
  };
}

function arm(cmd: Extract<TClientCommand, { cmd: 'arm' }>): TClientReply {
  mode = cmd.mode;
  members = 0;
  for (const sock of socks) {
    sock.next = 0;
    sock.decryptChain = undefined;
    sock.member = sock.index >= cmd.from && sock.index < cmd.to && sock.index !== cmd.except;
    if (sock.member) members++;
  }
  upto = 0;
  reached = 0;
  counting = true;
  histogram.reset();
  for (const key of Object.keys(counters) as Array<keyof typeof counters>) counters[key] = 0;
  firstAnomaly = undefined;
  return { ok: true, members };
}

function awaitUpto(cmd: Extract<TClientCommand, { cmd: 'await' }>): Promise<TClientReply> {
  upto = cmd.upto;
  reached = 0;
  for (const sock of socks) if (sock.member && sock.next >= upto) reached++;
  if (reached === members) return Promise.resolve({ ok: true, reached, members });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onReached = undefined;
      resolve({
        ok: false,
        reached,
        members,
        error: `${members - reached} of ${members} sockets did not receive message ${upto - 1} within ${cmd.timeoutMs} ms`,
      });
    }, cmd.timeoutMs);
    onReached = () => {
      clearTimeout(timer);
      resolve({ ok: true, reached, members });
    };
  });
}

async function report(): Promise<TClientReply> {
  await Promise.all(socks.map((s) => s.decryptChain));
  const reply: TClientReply = { ok: true, ...counters, firstAnomaly };
  if (mode === 'latency') reply.histogram = histogram.snapshot();
  counting = false;
  return reply;
}

async function closeAll(): Promise<TClientReply> {
  counting = false;
  const all = socks;
  socks = [];
  await Promise.race([
    Promise.all(
      all.map(
        (sock) =>
          new Promise<void>((resolve) => {
            if (sock.ws.readyState === WebSocket.CLOSED) return resolve();
            sock.ws.onclose = () => resolve();
            sock.ws.close();
          }),
      ),
    ),
    Bun.sleep(10_000),
  ]);
  return { ok: true };
}

async function handle(cmd: TClientCommand): Promise<TClientReply> {
  switch (cmd.cmd) {
    case 'connect':
      return connect(cmd);
    case 'join':
      return join(cmd);
    case 'arm':
      return arm(cmd);
    case 'await':
      return awaitUpto(cmd);
    case 'report':
      return report();
    case 'close':
      return closeAll();
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

process.on('message', (cmd: TClientCommand) => {
  handle(cmd).then(send, (error: unknown) =>
    send({ ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});

// Exit with the orchestrator, however it ends.
process.on('disconnect', () => process.exit(0));
const parent = Number(process.env.BENCH_PARENT_PID);
if (parent) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(3);
    }
  }, 1_000).unref();
}
send({ ok: true });
