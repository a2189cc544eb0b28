// A load-client process of the capacity run: holds up to ~19,000 authenticated WebSocket
// connections. Bun's WebSocket client cannot choose its source address, and one source address
// gives at most one connection per ephemeral port (28,232 here), so the WebSocket protocol is
// spoken over `Bun.connect({ localAddress })`: the upgrade request, the server's unmasked frames,
// and the client's own frames. Each socket binds one of the loopback addresses it is given
// (127.0.0.2, 127.0.0.3, …), so several processes never compete for one address's ports.
//
// The hot path decodes nothing: it compares the frame's first bytes with the benchmark prefix and
// reads the sequence number and the send time digit by digit.

import type { Socket } from 'bun';
import { Histogram } from '../lib/histogram.ts';
import { framePrefix, nowMs } from '../lib/shared.ts';
import { serveParent } from '../servers/control.ts';
import type { ICapacityReply, TCapacityCommand } from './protocol.ts';

interface IConn {
  socket?: Socket<IConn>;
  /** Bytes of a frame (or of the upgrade answer) split across reads. */
  rest?: Uint8Array;
  upgraded: boolean;
  /** Next expected sequence number. */
  next: number;
  /** Set while a setup step waits for its answer (the upgrade, `connected`, the join reply). */
  waiter?: (text: string) => void;
  failed?: (error: Error) => void;
}

const PREFIX = new TextEncoder().encode(framePrefix('helper'));
const T_FIELD = new TextEncoder().encode(',"t":');
const encoder = new TextEncoder();
const decoder = new TextDecoder();
// 0.1 ms buckets up to 2 s: a fan-out to tens of thousands of sockets takes longer than 200 ms.
const histogram = new Histogram(0.1);
const counters = { received: 0, outOfOrder: 0, malformed: 0, closed: 0 };
let conns: IConn[] = [];
let expect = 0;
let reached = 0;
let onReached: (() => void) | undefined;
let counting = false;

/**
 * A client text frame. RFC 6455 asks for a masked frame; the mask key is left as zeros (the
 * payload then goes out unchanged): the server unmasks whatever the key, and a load generator has
 * no intermediary to protect.
 */
function clientFrame(text: string): Uint8Array {
  const body = encoder.encode(text);
  const head = body.length < 126 ? 6 : 8;
  const frame = new Uint8Array(head + body.length);
  frame[0] = 0x81;
  if (body.length < 126) {
    frame[1] = 0x80 | body.length;
  } else {
    frame[1] = 0x80 | 126;
    frame[2] = body.length >> 8;
    frame[3] = body.length & 0xff;
  }
  frame.set(body, head);
  return frame;
}

const PONG = new Uint8Array([0x8a, 0x80, 0, 0, 0, 0]);

function startsWith(bytes: Uint8Array, prefix: Uint8Array, at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function arrive(): void {
  reached++;
  if (reached === conns.length && onReached) {
    const done = onReached;
    onReached = undefined;
    done();
  }
}

/** A benchmark message: `{"event":"b","data":{"s":<seq>,"t":<send time>,…`. */
function onMessage(conn: IConn, payload: Uint8Array): void {
  if (conn.waiter) {
    conn.waiter(decoder.decode(payload));
    return;
  }
  if (!startsWith(payload, PREFIX)) {
    // Anything else (a frame the helper sends on its own) is not a benchmark message.
    if (counting) counters.malformed++;
    return;
  }
  let i = PREFIX.length;
  let seq = 0;
  while (payload[i]! >= 48 && payload[i]! <= 57) seq = seq * 10 + payload[i++]! - 48;
  let sentAt = Number.NaN;
  if (startsWith(payload, T_FIELD, i)) {
    i += T_FIELD.length;
    let whole = 0;
    while (payload[i]! >= 48 && payload[i]! <= 57) whole = whole * 10 + payload[i++]! - 48;
    let fraction = 0;
    let scale = 1;
    if (payload[i] === 46) {
      i++;
      while (payload[i]! >= 48 && payload[i]! <= 57) {
        fraction = fraction * 10 + payload[i++]! - 48;
        scale *= 10;
      }
    }
    sentAt = whole + fraction / scale;
  }
  if (!counting) return;
  counters.received++;
  if (seq !== conn.next) counters.outOfOrder++;
  conn.next = seq + 1;
  histogram.record(nowMs() - sentAt);
  if (conn.next === expect) arrive();
}

/** Splits what arrived into frames; keeps an incomplete tail for the next read. */
function onData(conn: IConn, chunk: Uint8Array): void {
  let bytes = chunk;
  if (conn.rest) {
    bytes = new Uint8Array(conn.rest.length + chunk.length);
    bytes.set(conn.rest);
    bytes.set(chunk, conn.rest.length);
    conn.rest = undefined;
  }
  let at = 0;
  if (!conn.upgraded) {
    const end = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).indexOf('\r\n\r\n');
    if (end < 0) {
      conn.rest = bytes.slice();
      return;
    }
    conn.upgraded = true;
    conn.waiter?.(decoder.decode(bytes.subarray(0, end)));
    at = end + 4;
  }
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let head = 2;
    if (length === 126) {
      if (at + 4 > bytes.length) break;
      length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
      head = 4;
    } else if (length === 127) {
      if (at + 10 > bytes.length) break;
      length = bytes[at + 6]! * 2 ** 24 + ((bytes[at + 7]! << 16) | (bytes[at + 8]! << 8) | bytes[at + 9]!);
      head = 10;
    }
    if (at + head + length > bytes.length) break;
    const payload = bytes.subarray(at + head, at + head + length);
    at += head + length;
    if (opcode === 1) onMessage(conn, payload);
    else if (opcode === 9) conn.socket?.write(PONG);
    else if (opcode === 8) conn.socket?.end();
  }
  // The runtime may reuse the read buffer: keep a copy of the tail.
  if (at < bytes.length) conn.rest = bytes.slice(at);
}

function answer(conn: IConn, accept: (text: string) => boolean, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.waiter = undefined;
      reject(new Error(`${what}: no answer within 20 s`));
    }, 20_000);
    conn.failed = (error) => {
      clearTimeout(timer);
      reject(error);
    };
    conn.waiter = (text) => {
      clearTimeout(timer);
      conn.waiter = undefined;
      if (accept(text)) resolve(text);
      else reject(new Error(`${what}: unexpected ${text.slice(0, 120)}`));
    };
  });
}

async function connectOne(port: number, localAddress: string, user: string, room: string): Promise<IConn> {
  const conn: IConn = { upgraded: false, next: 0 };
  const upgraded = answer(conn, (t) => t.startsWith('HTTP/1.1 101'), 'upgrade');
  // `localAddress` is honoured by Bun.connect (checked on Bun 1.4) though its types omit it.
  const options = {
    hostname: '127.0.0.1',
    port,
    localAddress,
    data: conn,
    socket: {
      data: (s: Socket<IConn>, chunk: Uint8Array) => onData(s.data, chunk),
      close: (s: Socket<IConn>) => {
        if (counting) counters.closed++;
        s.data.failed?.(new Error('closed during setup'));
      },
      error: (s: Socket<IConn>, error: Error) => s.data.failed?.(error),
    },
  };
  conn.socket = await Bun.connect<IConn>(options as unknown as Bun.TCPSocketConnectOptions<IConn>);
  conn.socket.write(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: cm9vbWNhc3QtY2FwYWNpdA==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await upgraded;
  const connected = answer(conn, (t) => t.startsWith('{"event":"connected"'), 'authenticate');
  conn.socket.write(clientFrame(JSON.stringify({ event: 'authenticate', data: { token: 'ok', user } })));
  await connected;
  const joined = answer(conn, (t) => t.startsWith('{"event":"join"'), 'join');
  conn.socket.write(clientFrame(JSON.stringify({ event: 'join', data: { rooms: [room] } })));
  await joined;
  conn.failed = undefined;
  return conn;
}

async function connect(cmd: Extract<TCapacityCommand, { cmd: 'connect' }>): Promise<ICapacityReply> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < cmd.count) {
      const i = next++;
      try {
        conns.push(
          await connectOne(
            cmd.ports[i % cmd.ports.length]!,
            cmd.localAddresses[i % cmd.localAddresses.length]!,
            `cap-${cmd.tag}-${i}`,
            cmd.rooms && cmd.rooms.length > 0 ? cmd.rooms[i % cmd.rooms.length]! : cmd.room,
          ),
        );
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, worker));
  return {
    ok: failed === 0,
    connected: conns.length,
    failed,
    ms: performance.now() - started,
    error: firstError,
  };
}

function arm(cmd: Extract<TCapacityCommand, { cmd: 'arm' }>): ICapacityReply {
  expect = cmd.expect;
  reached = 0;
  for (const conn of conns) conn.next = 0;
  for (const key of Object.keys(counters) as Array<keyof typeof counters>) counters[key] = 0;
  histogram.reset();
  counting = true;
  return { ok: true, members: conns.length };
}

function finished(ok: boolean, error?: string): ICapacityReply {
  counting = false;
  return {
    ok: ok && counters.outOfOrder === 0 && counters.malformed === 0 && counters.closed === 0,
    error,
    reached,
    members: conns.length,
    ...counters,
    histogram: histogram.snapshot(),
  };
}

function awaitAll(cmd: Extract<TCapacityCommand, { cmd: 'await' }>): Promise<ICapacityReply> {
  if (reached === conns.length) return Promise.resolve(finished(true));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onReached = undefined;
      resolve(
        finished(
          false,
          `${conns.length - reached} of ${conns.length} sockets did not receive all ${expect} messages within ${cmd.timeoutMs} ms`,
        ),
      );
    }, cmd.timeoutMs);
    onReached = () => {
      clearTimeout(timer);
      resolve(finished(true));
    };
  });
}

async function closeAll(): Promise<ICapacityReply> {
  counting = false;
  for (const conn of conns) conn.socket?.end();
  conns = [];
  return { ok: true };
}

async function handle(cmd: TCapacityCommand): Promise<ICapacityReply> {
  switch (cmd.cmd) {
    case 'connect':
      return connect(cmd);
    case 'arm':
      return arm(cmd);
    case 'await':
      return awaitAll(cmd);
    case 'close':
      return closeAll();
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

serveParent<TCapacityCommand>(handle);
