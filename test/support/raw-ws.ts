import type { Socket } from 'bun';

/**
 * A WebSocket client written by hand on a raw TCP socket (`Bun.connect`).
 *
 * Unlike the built-in `WebSocket`, it can stop reading at the TCP level
 * (`pause()`): the kernel buffers fill, the server's writes back up, and the
 * server sees a genuinely slow consumer. Only what the reliability tests need
 * is implemented: the HTTP upgrade, masked text frames out, and unmasked text,
 * close and ping frames in (fragmented messages are reassembled).
 */
export class RawWebSocket {
  /** Parsed text messages, in order. */
  readonly messages: string[] = [];
  /** Payload bytes of every data frame received so far. */
  bytesReceived = 0;
  closeCode?: number;
  readonly closed: Promise<number | undefined>;

  private socket!: Socket<undefined>;
  private inbox: Uint8Array = new Uint8Array(0);
  private outbox: Uint8Array[] = [];
  private upgraded = false;
  private fragments: Uint8Array[] = [];
  private onUpgrade?: (error?: Error) => void;
  private onClosed!: (code: number | undefined) => void;
  private waiters: Array<() => void> = [];

  private constructor() {
    this.closed = new Promise((resolve) => {
      this.onClosed = resolve;
    });
  }

  /** Opens the TCP connection and completes the HTTP upgrade to `url` (`ws://host:port/path`). */
  static async connect(url: string, timeoutMs = 5_000): Promise<RawWebSocket> {
    const target = new URL(url);
    const client = new RawWebSocket();
    const upgraded = new Promise<void>((resolve, reject) => {
      client.onUpgrade = (error) => (error ? reject(error) : resolve());
    });
    client.socket = await Bun.connect({
      hostname: target.hostname,
      port: Number(target.port),
      socket: {
        data: (_socket, chunk) => client.receive(chunk),
        drain: () => client.flush(),
        close: () => client.finish(),
        error: () => client.finish(),
      },
    });
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64');
    client.write(
      new TextEncoder().encode(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\n` +
          `Host: ${target.host}\r\n` +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`upgrade to ${url} timed out`)), timeoutMs);
    });
    try {
      await Promise.race([upgraded, timeout]);
    } catch (error) {
      client.terminate();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  /** Parsed JSON frames with this event. */
  all(event: string): Array<{ event: string; data?: unknown }> {
    const found: Array<{ event: string; data?: unknown }> = [];
    for (const text of this.messages) {
      if (!text.includes(`"event":${JSON.stringify(event)}`)) continue;
      try {
        const frame = JSON.parse(text) as { event: string; data?: unknown };
        if (frame.event === event) found.push(frame);
      } catch {
        // not JSON: skip
      }
    }
    return found;
  }

  /** Waits until `predicate` holds; rejects after `timeoutMs` or when the connection closes. */
  async until(predicate: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (predicate()) return;
      if (this.closeCode !== undefined || this.socket.readyState !== 1) {
        throw new Error(`raw socket closed before ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  sendJson(message: unknown): void {
    this.sendFrame(0x1, new TextEncoder().encode(JSON.stringify(message)));
  }

  /** Stops reading from the TCP socket: the server's writes back up. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Drops the TCP connection without a closing handshake. */
  terminate(): void {
    this.socket.terminate();
    this.finish();
  }

  private sendFrame(opcode: number, payload: Uint8Array): void {
    const length = payload.length;
    const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = new Uint8Array(headerLength + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else if (length < 65_536) {
      frame[1] = 0x80 | 126;
      frame[2] = length >> 8;
      frame[3] = length & 0xff;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(length));
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    frame.set(mask, headerLength);
    const body = headerLength + 4;
    for (let i = 0; i < length; i++) frame[body + i] = payload[i]! ^ mask[i & 3]!;
    this.write(frame);
  }

  private write(bytes: Uint8Array): void {
    this.outbox.push(bytes);
    this.flush();
  }

  private flush(): void {
    while (this.outbox.length > 0) {
      const head = this.outbox[0]!;
      const written = this.socket.write(head);
      if (written <= 0) return;
      if (written < head.length) {
        this.outbox[0] = head.subarray(written);
        return;
      }
      this.outbox.shift();
    }
  }

  private receive(chunk: Uint8Array): void {
    if (this.inbox.length === 0) {
      this.inbox = chunk;
    } else {
      const merged = new Uint8Array(this.inbox.length + chunk.length);
      merged.set(this.inbox);
      merged.set(chunk, this.inbox.length);
      this.inbox = merged;
    }
    if (!this.upgraded) {
      const text = new TextDecoder().decode(this.inbox);
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = text.slice(0, text.indexOf('\r\n'));
      if (!status.includes(' 101 ')) {
        this.onUpgrade?.(new Error(`upgrade refused: ${status}`));
        return;
      }
      this.upgraded = true;
      // Headers are ASCII, so the character offset is the byte offset.
      this.inbox = this.inbox.subarray(end + 4);
      this.onUpgrade?.();
      this.onUpgrade = undefined;
    }
    this.parseFrames();
    // Keep only a private copy of an incomplete frame: the chunk belongs to the runtime.
    this.inbox = this.inbox.length > 0 ? this.inbox.slice() : new Uint8Array(0);
    this.wake();
  }

  private parseFrames(): void {
    for (;;) {
      const buf = this.inbox;
      if (buf.length < 2) return;
      const fin = (buf[0]! & 0x80) !== 0;
      const opcode = buf[0]! & 0x0f;
      let length = buf[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buf.length < 4) return;
        length = (buf[2]! << 8) | buf[3]!;
        offset = 4;
      } else if (length === 127) {
        if (buf.length < 10) return;
        length = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
        offset = 10;
      }
      if (buf.length < offset + length) return;
      const payload = buf.slice(offset, offset + length);
      this.inbox = buf.subarray(offset + length);
      switch (opcode) {
        case 0x0:
        case 0x1:
        case 0x2:
          this.bytesReceived += payload.length;
          this.fragments.push(payload);
          if (fin) {
            const whole = Buffer.concat(this.fragments);
            this.fragments = [];
            this.messages.push(whole.toString('utf8'));
          }
          break;
        case 0x8:
          this.closeCode = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
          this.socket.end();
          break;
        case 0x9:
          this.sendFrame(0xa, payload);
          break;
        default:
          break;
      }
    }
  }

  private finish(): void {
    this.onUpgrade?.(new Error('connection closed during upgrade'));
    this.onUpgrade = undefined;
    this.onClosed(this.closeCode);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

/**
 * Sends one WebSocket upgrade request by hand (so any `Origin` and `Host` can be set,
 * or left out) and resolves with the HTTP status line's code and the raw response
 * head. The connection is closed right after, whatever the answer.
 */
export async function rawUpgrade(
  url: string,
  headers: Record<string, string | undefined> = {},
  timeoutMs = 5_000,
): Promise<{ status: number; head: string }> {
  const target = new URL(url);
  const lines = [
    `GET ${target.pathname}${target.search} HTTP/1.1`,
    `Host: ${target.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ];
  const given = Object.entries(headers);
  // A given `host` replaces the default one; `undefined` removes a header.
  const kept = lines.filter(
    (line) => !given.some(([name]) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`)),
  );
  for (const [name, value] of given) if (value !== undefined) kept.push(`${name}: ${value}`);
  let received = '';
  const { promise: head, resolve } = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname: target.hostname,
    port: Number(target.port),
    socket: {
      data: (_socket, chunk) => {
        received += new TextDecoder().decode(chunk);
        if (received.includes('\r\n\r\n')) resolve(received.slice(0, received.indexOf('\r\n\r\n')));
      },
      close: () => resolve(received),
      error: () => resolve(received),
    },
  });
  socket.write(`${kept.join('\r\n')}\r\n\r\n`);
  const timer = setTimeout(() => resolve(received), timeoutMs);
  const text = await head;
  clearTimeout(timer);
  socket.end();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, head: text };
}
