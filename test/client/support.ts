import { RoomcastClientError } from '../../src/client/errors.ts';
import type {
  IRoomcastClientOptions,
  IStateChange,
  TEventMap,
  TUrlSource,
  TWebSocketConstructor,
} from '../../src/client/index.ts';
import { RoomcastClient } from '../../src/client/index.ts';
import { silentLogger } from '../../src/common/logger.ts';
import type { IWebSocketServerOptions } from '../../src/server/options.ts';
import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { acceptOkToken, eventually } from '../support/server.ts';

export { eventually };

/**
 * The real global WebSocket, counting constructions and recording every frame
 * sent and received, so tests can see exactly what went over the wire.
 */
export function recordingWebSocket(): {
  WebSocket: TWebSocketConstructor;
  opened: number;
  sent: string[];
  received: string[];
} {
  const record = { opened: 0, sent: [] as string[], received: [] as string[] };
  class RecordingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      record.opened++;
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string') record.received.push(event.data);
      });
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (typeof data === 'string') record.sent.push(data);
      super.send(data);
    }
  }
  return Object.assign(record, { WebSocket: RecordingWebSocket as unknown as TWebSocketConstructor });
}

/** A client plus everything it reported, closed by `closeAll()`. */
export interface ITrackedClient<In extends object, Out extends object> {
  client: RoomcastClient<In, Out>;
  errors: RoomcastClientError[];
  states: IStateChange[];
}

const open = new Set<RoomcastClient<object, object, object>>();

export function trackedClient<In extends object = TEventMap, Out extends object = In>(
  url: TUrlSource,
  options: IRoomcastClientOptions = {},
): ITrackedClient<In, Out> {
  const errors: RoomcastClientError[] = [];
  const states: IStateChange[] = [];
  const client = new RoomcastClient<In, Out>(url, {
    auth: { token: 'ok' },
    reconnect: { initialDelay: 30, maxDelay: 200 },
    onError: (error) => errors.push(error),
    onStateChange: (change) => states.push(change),
    ...options,
  });
  open.add(client as RoomcastClient<object, object, object>);
  return { client, errors, states };
}

/** Closes every client made by `trackedClient` (call it in afterEach). */
export function closeAllClients(): void {
  for (const client of open) {
    if (client.state !== 'disconnected') client.close();
  }
  open.clear();
}

export function errorCodes(errors: RoomcastClientError[]): string[] {
  return errors.map((error) => error.code);
}

/** Resolves when the client reaches `state` (rejects after `timeout`). */
export function waitForState(
  client: RoomcastClient<object, object, object>,
  state: IStateChange['state'],
  timeout = 3_000,
): Promise<IStateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`client did not reach "${state}" within ${timeout}ms (now ${client.state})`));
    }, timeout);
    const stop = client.onStateChange((change) => {
      if (change.state !== state) return;
      clearTimeout(timer);
      stop();
      resolve(change);
    });
  });
}

export interface IFixedPortServer {
  helper: WebSocketServerHelper;
  server: ReturnType<typeof Bun.serve>;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Like test/support/server.ts's startServer, but on a chosen port (0 = any),
 * so a test can stop the server and start a new one where clients expect it.
 */
export async function startServerOnPort(
  port: number,
  opts: Omit<Partial<IWebSocketServerOptions>, 'server'> = {},
): Promise<IFixedPortServer> {
  const server = Bun.serve<{ clientId: string }>({
    hostname: '127.0.0.1',
    port,
    fetch: () => new Response('starting', { status: 503 }),
    websocket: { message() {} },
  });
  const helper = new WebSocketServerHelper({
    identifier: 'client-test-ws',
    authenticateFn: acceptOkToken,
    logger: silentLogger,
    ...opts,
    server,
  } as IWebSocketServerOptions);
  await helper.configure();
  server.reload({
    fetch(req, srv) {
      if (new URL(req.url).pathname === helper.getPath()) {
        if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
        return new Response('upgrade failed', { status: 500 });
      }
      return new Response('ok');
    },
    websocket: helper.getBunWebSocketHandler() as never,
  });
  const actualPort = server.port as number;
  return {
    helper,
    server,
    port: actualPort,
    url: `ws://127.0.0.1:${actualPort}${helper.getPath()}`,
    async stop() {
      await helper.shutdown();
      server.stop(true);
    },
  };
}

/** Every message the server's messageHandler saw, in order. */
export function messageLog(): {
  messages: Array<{ clientId: string; event: string; data: unknown }>;
  messageHandler: NonNullable<IWebSocketServerOptions['messageHandler']>;
} {
  const messages: Array<{ clientId: string; event: string; data: unknown }> = [];
  return {
    messages,
    messageHandler: ({ clientId, message }) => {
      messages.push({ clientId, event: message.event, data: message.data });
    },
  };
}

export { RoomcastClientError };
