// Type-level example of the client SDK (checked by `npm run typecheck`; never run).
// Each `@ts-expect-error` line is misuse the compiler must refuse: if one of them
// stopped being an error, the typecheck would fail on the unused directive.
import {
  createClient,
  type IConnectedInfo,
  type IHistoryResult,
  type IRoomRecovery,
  type IStateChange,
  type IUrlContext,
  RoomcastClient,
  type RoomcastClientError,
  type TWebSocketConstructor,
} from '../../src/client/index.ts';

/** What the server sends. */
interface ServerEvents {
  chat: { from: string; text: string; at: number };
  presence: { userId: string; online: boolean };
}

/** What the client sends. */
interface ClientEvents {
  chat: { text: string };
  typing: undefined;
}

interface AuthData {
  token: string;
}

const client = createClient<ServerEvents, ClientEvents, AuthData>('wss://chat.example.test/ws', {
  auth: async () => ({ token: await Promise.resolve('jwt') }),
  heartbeatInterval: 25_000,
  reconnect: { initialDelay: 250, maxDelay: 10_000 },
  maxQueueSize: 50,
  encryption: true,
  onError: (error: RoomcastClientError) => console.warn(error.code, error.message),
  onStateChange: ({ state, close }: IStateChange) => console.info(state, close?.code),
});

// Incoming payloads are typed from the map.
client.on('chat', (data) => {
  const text: string = data.text;
  const at: number = data.at;
  console.log(text, at);
});
client.once('presence', ({ userId, online }) => console.log(userId, online));
client.on('connected', (info: IConnectedInfo) => console.log(info.id, info.encrypted));
client.on('disconnect', ({ code, willReconnect }) => console.log(code, willReconnect));
client.on('error', (error) => console.log(error.code));

// Outgoing payloads are typed too; an event without data needs none.
client.emit('chat', { text: 'hi' });
client.emit('typing');

// History rooms: the position as the listener's second argument, recovery outcomes, history().
client.on('chat', (_data, publication) => {
  if (publication) console.log(publication.room, publication.offset, publication.epoch);
});
const stopRecovery: () => void = client.onRecovery(({ room, recovered, recoveredCount }: IRoomRecovery) =>
  console.log(room, recovered, recoveredCount),
);
stopRecovery();
export async function recent(): Promise<IHistoryResult> {
  const since = client.position('lobby');
  const result = await client.history('lobby', { since, limit: 20, reverse: true });
  const first: number | undefined = result.publications[0]?.offset;
  console.log(first, result.epoch);
  // @ts-expect-error -- limit is a number
  await client.history('lobby', { limit: '20' });
  return result;
}

// Several instances: a list, or a function picking the URL of each attempt.
createClient(['wss://a.example.test/ws', new URL('wss://b.example.test/ws')]);
createClient(({ attempt, previous }: IUrlContext) =>
  previous && attempt > 2 ? previous : 'wss://a.example.test/ws',
);
// @ts-expect-error -- a URL function returns a URL, not a promise
createClient(async () => 'wss://a.example.test/ws');

export async function rooms(): Promise<string[]> {
  const granted: string[] = await client.join(['lobby', 'news']);
  await client.leave('news');
  return granted;
}

// @ts-expect-error -- unknown incoming event
client.on('chta', () => {});
// @ts-expect-error -- wrong payload shape for an incoming event
client.on('chat', (data: { text: number }) => console.log(data));
// @ts-expect-error -- outgoing payload has the wrong type
client.emit('chat', { text: 42 });
// @ts-expect-error -- outgoing payload is missing
client.emit('chat');
// @ts-expect-error -- `presence` is only received, never sent
client.emit('presence', { userId: 'u', online: true });
// @ts-expect-error -- system events cannot be emitted
client.emit('join', { rooms: ['x'] });
// @ts-expect-error -- auth must match AuthData
createClient<ServerEvents, ClientEvents, AuthData>('wss://x.test/ws', { auth: { token: 1 } });
// @ts-expect-error -- rooms are strings
client.join([1, 2]);

// Without type parameters everything is allowed and payloads are `unknown`.
const loose = new RoomcastClient('ws://localhost:3000/ws');
loose.on('anything', (data: unknown) => console.log(data));
loose.emit('anything', { free: 'form' });
// @ts-expect-error -- reserved names stay reserved even without a map
loose.emit('heartbeat');

// The DOM WebSocket fits the implementation option (as do `ws` and test doubles).
export const implementation: TWebSocketConstructor = WebSocket;
