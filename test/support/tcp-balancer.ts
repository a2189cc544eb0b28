import type { Socket, TCPSocketListener } from 'bun';

interface IConnection {
  upstream?: Socket<undefined>;
  pending: Uint8Array[];
  closed: boolean;
}

/**
 * A minimal TCP load balancer for tests: each new connection goes to the next
 * backend (round robin) whose `GET /readyz` answers 200 at that moment, the way
 * a real balancer with readiness checks routes around a draining instance.
 * Bytes are piped both ways unchanged (so WebSocket upgrades pass through).
 */
export class TcpBalancer {
  private readonly backends: number[] = [];
  private next = 0;
  private readonly listener: TCPSocketListener<IConnection>;
  /** Backend port each accepted connection was sent to, in order. */
  readonly routed: number[] = [];

  constructor() {
    this.listener = Bun.listen<IConnection>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (client) => {
          client.data = { pending: [], closed: false };
          void this.route(client);
        },
        data: (client, chunk) => {
          if (client.data.upstream) client.data.upstream.write(chunk);
          else client.data.pending.push(new Uint8Array(chunk));
        },
        close: (client) => {
          client.data.closed = true;
          client.data.upstream?.end();
        },
        error: (client) => {
          client.data.upstream?.end();
        },
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  add(port: number): void {
    this.backends.push(port);
  }

  remove(port: number): void {
    const index = this.backends.indexOf(port);
    if (index !== -1) this.backends.splice(index, 1);
  }

  stop(): void {
    this.listener.stop(true);
  }

  private async pick(): Promise<number | undefined> {
    for (let tried = 0; tried < this.backends.length; tried++) {
      const port = this.backends[this.next++ % this.backends.length] as number;
      try {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(500) });
        if (response.status === 200) return port;
      } catch {}
    }
    return undefined;
  }

  private async route(client: Socket<IConnection>): Promise<void> {
    const port = await this.pick();
    if (port === undefined || client.data.closed) {
      client.end();
      return;
    }
    this.routed.push(port);
    try {
      const upstream = await Bun.connect({
        hostname: '127.0.0.1',
        port,
        socket: {
          data: (_up, chunk) => {
            client.write(chunk);
          },
          close: () => {
            client.end();
          },
          error: () => {
            client.end();
          },
        },
      });
      client.data.upstream = upstream;
      for (const chunk of client.data.pending.splice(0)) upstream.write(chunk);
      if (client.data.closed) upstream.end();
    } catch {
      client.end();
    }
  }
}
