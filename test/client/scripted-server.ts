import type { ServerWebSocket } from 'bun';

/**
 * A real WebSocket server on 127.0.0.1:0 that speaks the roomcast protocol by
 * script: it authenticates everyone, records every frame a client sends, and
 * lets the test answer joins and push publications exactly as it wants,
 * including the duplicates, gaps and epoch changes a correct server never
 * sends on its own. Used to prove what the SDK does with each of them.
 */
export interface IScriptedServer {
  url: string;
  /** Every frame received, parsed, with the number of the connection it came on (1-based). */
  received: Array<{ connection: number; frame: IClientFrame }>;
  /** Connections opened so far. */
  readonly connections: number;
  /** Sends a frame to the newest connection. */
  push(frame: object): void;
  /** Answers the join in flight for `room`: granted, at `position`, with `recovered` when given. */
  answerJoin(room: string, position: { offset: number; epoch: string }, recovered?: boolean): void;
  /** A publication of a history room. */
  publish(room: string, offset: number, epoch: string, data?: unknown): void;
  /** Closes the newest connection. */
  drop(code?: number): void;
  /** Resolves with the next frame of `event` a client sends (also one already received and not yet taken). */
  next(event: string, timeout?: number): Promise<IClientFrame>;
  stop(): void;
}

export interface IClientFrame {
  event: string;
  data?: Record<string, unknown>;
  id?: string;
}

export function scriptedServer(): IScriptedServer {
  const received: IScriptedServer['received'] = [];
  const taken = new Set<IClientFrame>();
  const waiters: Array<{ event: string; resolve(frame: IClientFrame): void }> = [];
  let newest: ServerWebSocket<{ n: number }> | undefined;
  let connections = 0;
  const server = Bun.serve<{ n: number }>({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req, srv) {
      if (srv.upgrade(req, { data: { n: ++connections } })) return undefined;
      return new Response('upgrade failed', { status: 500 });
    },
    websocket: {
      open(ws) {
        newest = ws;
      },
      message(ws, raw) {
        const frame = JSON.parse(String(raw)) as IClientFrame;
        received.push({ connection: ws.data.n, frame });
        if (frame.event === 'authenticate') {
          ws.send(JSON.stringify({ event: 'connected', data: { id: `c${ws.data.n}`, time: '' } }));
          return;
        }
        const waiter = waiters.findIndex((w) => w.event === frame.event);
        if (waiter >= 0) {
          taken.add(frame);
          waiters.splice(waiter, 1)[0]!.resolve(frame);
        }
      },
    },
  });
  const send = (frame: object) => newest?.send(JSON.stringify(frame));
  return {
    url: `ws://127.0.0.1:${server.port}/ws`,
    received,
    get connections() {
      return connections;
    },
    push: send,
    answerJoin(room, position, recovered) {
      const data: Record<string, unknown> = { rooms: [room], positions: { [room]: position } };
      if (recovered !== undefined) data.recovered = { [room]: recovered };
      send({ event: 'join', data });
    },
    publish(room, offset, epoch, data = { offset }) {
      send({ event: 'chat', data, room, offset, epoch });
    },
    drop(code = 4002) {
      newest?.close(code, 'dropped by the test');
    },
    next(event, timeout = 3_000) {
      const ready = received.find(({ frame }) => frame.event === event && !taken.has(frame));
      if (ready) {
        taken.add(ready.frame);
        return Promise.resolve(ready.frame);
      }
      return new Promise((resolve, reject) => {
        const entry = { event, resolve };
        waiters.push(entry);
        setTimeout(() => {
          const at = waiters.indexOf(entry);
          if (at < 0) return;
          waiters.splice(at, 1);
          reject(new Error(`no "${event}" frame within ${timeout}ms`));
        }, timeout);
      });
    },
    stop() {
      server.stop(true);
    },
  };
}
