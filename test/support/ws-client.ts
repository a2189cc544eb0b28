export interface IFrame {
  event: string;
  data?: any;
  id?: string;
}

/** A real WebSocket client that records every frame and close, with awaitable helpers. */
export class TestClient {
  readonly frames: IFrame[] = [];
  readonly raw: string[] = [];
  closeInfo?: { code: number; reason: string };
  private waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.addEventListener('close', (e) => {
        this.closeInfo = { code: e.code, reason: e.reason };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.addEventListener('message', (e) => {
      const text = typeof e.data === 'string' ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
      this.raw.push(text);
      try {
        this.frames.push(JSON.parse(text));
      } catch {
        this.frames.push({ event: '__unparsable__', data: text });
      }
      this.wake();
    });
  }

  static connect(url: string): Promise<TestClient> {
    return TestClient.attach(new WebSocket(url));
  }

  /** Wraps a WebSocket just created (e.g. with Bun's `headers` option); resolves once it is open. */
  static attach(ws: WebSocket): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const client = new TestClient(ws);
      ws.addEventListener('open', () => resolve(client), { once: true });
      ws.addEventListener('error', () => reject(new Error(`could not connect to ${ws.url}`)), { once: true });
    });
  }

  /** Connects and authenticates; resolves with the `connected` data. */
  static async authenticated(
    url: string,
    auth: Record<string, unknown> = { token: 'ok' },
  ): Promise<TestClient> {
    const client = await TestClient.connect(url);
    client.send({ event: 'authenticate', data: auth });
    await client.next('connected');
    return client;
  }

  get id(): string {
    const connected = this.frames.find((f) => f.event === 'connected');
    if (!connected) throw new Error('client is not authenticated');
    return connected.data.id;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  /** Frames with this event received so far. */
  all(event: string): IFrame[] {
    return this.frames.filter((f) => f.event === event);
  }

  /**
   * Waits for the first frame (at index >= `from`) with `event` matching `where`.
   * Rejects after `timeout` ms or if the socket closes first.
   */
  async next(
    event: string,
    where: (data: any) => boolean = () => true,
    timeout = 3_000,
    from = 0,
  ): Promise<IFrame> {
    let found: IFrame | undefined;
    await this.until(
      () => {
        found = this.frames.slice(from).find((f) => f.event === event && where(f.data));
        return found !== undefined;
      },
      `"${event}"`,
      timeout,
    );
    return found!;
  }

  /** Waits until `predicate` holds (re-checked on every frame); rejects on close or after `timeout`. */
  async until(predicate: () => boolean, what = 'condition', timeout = 3_000): Promise<void> {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (predicate()) return;
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code}) before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.frames.map((f) => f.event))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the close event (rejects after `timeout`). */
  async closedWithin(timeout = 3_000): Promise<{ code: number; reason: string }> {
    return Promise.race([
      this.closed,
      Bun.sleep(timeout).then(() => {
        throw new Error(`socket still open after ${timeout}ms`);
      }),
    ]);
  }

  /**
   * Resolves once the server has processed every frame sent before it: a
   * reserved event is always answered with an `error`, in order.
   */
  async fence(): Promise<void> {
    const before = this.all('error').length;
    this.send({ event: 'connected' });
    await this.until(() => this.all('error').length > before, 'fence');
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Asserts that no frame with `event` arrives within `ms`. */
export async function expectSilence(client: TestClient, event: string, ms = 150): Promise<void> {
  const before = client.all(event).length;
  await Bun.sleep(ms);
  const after = client.all(event).length;
  if (after !== before) throw new Error(`expected no "${event}" but got ${after - before}`);
}
