// The recovery phase of the benchmark (issue 10): N clients of a room all drop at once, 100
// messages are sent to the room while they are away, and all N reconnect at the same moment,
// each asking to recover from the last position it saw. Measured: the wall time from the first
// reconnect until every client has its recovery answer and all 100 missed messages (in order,
// each exactly once), and the server's CPU over that time. Two systems, one after the other:
//   helper-history: roomcast with `historyFn` on the room (Redis mode), `join` with `since`;
//   socketio-csr:   Socket.IO 4 with its in-memory adapter and `connectionStateRecovery`, the
//                   CONNECT packet carrying `{ pid, offset }` as socket.io-client sends it.
// And a baseline (workload `reconnect`, kind helper): the same N reconnecting at once to a room
// without history, each only authenticating and joining, so the cost of reconnecting itself shows.
// The clients live in the orchestrator process (Bun's WebSocket client): one object per
// connection is fine at this size, and both systems are driven by the same loop.

import { type IServerProc, settleClients, startServer } from './procs.ts';
import { EVENT, type IPublishRequest, ROOM, type TServerKind } from './shared.ts';
import type { IWorkloadResult } from './types.ts';

/** Messages each client misses while it is away. */
export const MISSED = 100;
const SIZE = 64;
const SETUP_CONCURRENCY = 64;
const TIMEOUT_MS = 60_000;

interface IPosition {
  offset: number;
  epoch: string;
}

/** One connection of either protocol: counts the benchmark messages after the first one. */
class RecoveringClient {
  ws?: WebSocket;
  /** Next expected sequence number. */
  next = 0;
  problems = 0;
  recovered?: boolean;
  /** roomcast: the last position seen; Socket.IO: its session id and the last offset. */
  position?: IPosition;
  pid?: string;
  offset?: string;
  private onChange?: () => void;

  constructor(
    readonly socketIo: boolean,
    readonly index: number,
  ) {}

  /** Connects, authenticates and joins (or, with `recover`, asks to recover). */
  open(url: string, recover: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url);
      this.ws = ws;
      const timer = setTimeout(() => reject(new Error(`client ${this.index}: no answer`)), TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => reject(new Error(`client ${this.index}: connection failed`));
      ws.onclose = (e) => {
        if (this.onChange === undefined) reject(new Error(`client ${this.index}: closed ${e.code}`));
      };
      const auth = { token: 'ok', user: `r${this.index}` };
      if (this.socketIo) {
        ws.onmessage = (e) => {
          const text = e.data as string;
          if (text === '2') ws.send('3');
          else if (text.startsWith('0{')) {
            const recovery = recover ? { pid: this.pid, offset: this.offset } : {};
            ws.send(`40${JSON.stringify({ ...auth, ...recovery })}`);
          } else if (text.startsWith('40{')) {
            const { pid } = JSON.parse(text.slice(2)) as { pid?: string };
            if (recover) {
              this.recovered = pid !== undefined && pid === this.pid;
              done();
            } else {
              this.pid = pid;
              ws.send(`421${JSON.stringify(['join', [ROOM]])}`);
            }
          } else if (text.startsWith('431')) done();
          else if (text.startsWith(`42["${EVENT}"`)) this.message(text);
          else this.problems++;
        };
      } else {
        ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: auth }));
        ws.onmessage = (e) => {
          const text = e.data as string;
          if (text.startsWith(`{"event":"${EVENT}"`)) return this.message(text);
          const frame = JSON.parse(text) as { event: string; data: { recovered?: Record<string, boolean> } };
          if (frame.event === 'connected') {
            const since = recover && this.position ? { since: { [ROOM]: this.position } } : {};
            ws.send(JSON.stringify({ event: 'join', data: { rooms: [ROOM], ...since } }));
          } else if (frame.event === 'join') {
            if (recover) this.recovered = frame.data.recovered?.[ROOM] === true;
            done();
          } else this.problems++;
        };
      }
    });
  }

  private message(text: string): void {
    let seq: number;
    if (this.socketIo) {
      const [, data, offset] = JSON.parse(text.slice(2)) as [string, { s: number }, string?];
      seq = data.s;
      if (offset !== undefined) this.offset = offset;
    } else {
      const frame = JSON.parse(text) as { data: { s: number }; offset?: number; epoch?: string };
      seq = frame.data.s;
      if (frame.offset !== undefined) this.position = { offset: frame.offset, epoch: frame.epoch! };
    }
    if (seq === this.next) this.next++;
    else this.problems++;
    this.onChange?.();
  }

  /** Resolves once messages 0..upto-1 have arrived. */
  until(upto: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onChange = undefined;
        reject(new Error(`client ${this.index} got ${this.next} of ${upto} messages`));
      }, TIMEOUT_MS);
      const check = () => {
        if (this.next < upto) return;
        clearTimeout(timer);
        resolve();
      };
      this.onChange = check;
      check();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      const ws = this.ws;
      if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
      this.onChange = () => {};
      ws.onclose = () => resolve();
      ws.close();
    });
  }
}

async function cpuUs(server: IServerProc): Promise<number> {
  const { user, system } = await server.cpu();
  return user + system;
}

async function publish(server: IServerProc, seq: number, count: number): Promise<void> {
  await server.post('/ctl/publish', {
    mode: 'send',
    room: ROOM,
    count,
    size: SIZE,
    seq,
  } satisfies IPublishRequest);
}

/** One system: connect and join N clients, one message they all see, all drop, 100 missed, all recover. */
async function recoverOnce(
  kind: TServerKind,
  count: number,
  redisPort: number,
  limit: number,
): Promise<IWorkloadResult> {
  const socketIo = kind === 'socketio-csr';
  // The baseline: a plain helper, whose clients rejoin without asking for anything.
  const recover = kind !== 'helper';
  const workload = recover ? 'recover-100' : 'reconnect';
  const server = await startServer(kind, 'A', redisPort, limit);
  const clients = Array.from({ length: count }, (_, i) => new RecoveringClient(socketIo, i));
  try {
    for (let i = 0; i < count; i += SETUP_CONCURRENCY) {
      await Promise.all(clients.slice(i, i + SETUP_CONCURRENCY).map((c) => c.open(server.url, false)));
    }
    // Every client has seen one message of the room, so each has a position to recover from.
    await publish(server, 0, 1);
    await Promise.all(clients.map((c) => c.until(1)));
    await Promise.all(clients.map((c) => c.close()));
    await settleClients(server, 0);
    await publish(server, 1, MISSED);
    await Bun.sleep(200);
    const before = await cpuUs(server);
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        await c.open(server.url, recover);
        if (recover) await c.until(1 + MISSED);
      }),
    );
    const wallMs = performance.now() - t0;
    const used = (await cpuUs(server)) - before;
    await Bun.sleep(200); // a repeated frame arriving late still counts as a problem
    const notRecovered = recover ? clients.filter((c) => c.recovered !== true).length : 0;
    const problems = clients.reduce((n, c) => n + c.problems, 0);
    if (notRecovered > 0 || problems > 0) {
      return {
        kind,
        clients: count,
        workload,
        status: 'FAILED',
        error: `${notRecovered} clients not recovered, ${problems} frames missing, repeated or out of order`,
      };
    }
    return {
      kind,
      clients: count,
      workload,
      status: 'ok',
      ...(recover
        ? { messages: MISSED, deliveries: MISSED * count, cpuUsPerDelivery: used / (MISSED * count) }
        : {}),
      members: count,
      serverCpuUs: used,
      wallMs,
    };
  } catch (error) {
    return {
      kind,
      clients: count,
      workload,
      status: 'FAILED',
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

/** The recovery workload for roomcast (history) and Socket.IO (connection state recovery). */
export async function recoveryPhase(
  count: number,
  redisPort: number,
  limit: number,
  kinds: TServerKind[] = ['helper-history', 'helper', 'socketio-csr'],
): Promise<IWorkloadResult[]> {
  const results: IWorkloadResult[] = [];
  for (const kind of kinds) results.push(await recoverOnce(kind, count, redisPort, limit));
  return results;
}
