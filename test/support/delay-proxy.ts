import type { Socket, TCPSocketListener } from 'bun';

interface IPipe {
  upstream?: Socket<IPipe>;
  peer?: Socket<IPipe>;
  pending: Uint8Array[];
}

/**
 * A TCP proxy for tests that holds every chunk `delayMs` in each direction (order kept), so a
 * connection through it is a slow link: e.g. one instance's Redis far away and another's near.
 */
export class DelayProxy {
  private readonly listener: TCPSocketListener<IPipe>;
  private readonly sockets = new Set<Socket<IPipe>>();

  constructor(
    private readonly targetPort: number,
    private readonly delayMs: number,
  ) {
    this.listener = Bun.listen<IPipe>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (client) => {
          client.data = { pending: [] };
          this.sockets.add(client);
          void this.connect(client);
        },
        data: (client, chunk) => {
          const bytes = new Uint8Array(chunk);
          setTimeout(() => {
            if (client.data.upstream) client.data.upstream.write(bytes);
            else client.data.pending.push(bytes);
          }, this.delayMs);
        },
        close: (client) => {
          this.sockets.delete(client);
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

  stop(): void {
    this.listener.stop(true);
    for (const socket of this.sockets) socket.end();
  }

  private async connect(client: Socket<IPipe>): Promise<void> {
    const delay = this.delayMs;
    const upstream = await Bun.connect<IPipe>({
      hostname: '127.0.0.1',
      port: this.targetPort,
      socket: {
        open: (socket) => {
          socket.data = { pending: [], peer: client };
        },
        data: (socket, chunk) => {
          const bytes = new Uint8Array(chunk);
          setTimeout(() => socket.data.peer?.write(bytes), delay);
        },
        close: () => {
          client.end();
        },
        error: () => {
          client.end();
        },
      },
    });
    this.sockets.add(upstream);
    client.data.upstream = upstream;
    for (const bytes of client.data.pending) upstream.write(bytes);
    client.data.pending = [];
  }
}
