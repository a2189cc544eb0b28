// The demo application: a chat with rooms, presence and announcements, built
// only on roomcast's public API (the application base, the WebSocket
// component, the Redis helper and the server-side encryption helper).

import { getCookie } from 'hono/cookie';
import {
  BaseApplication,
  type IApplicationOptions,
  WebSocketBindingKeys,
  WebSocketComponent,
} from '../../src/core/index.ts';
import {
  createEcdhEncryption,
  type IWebSocketServerOptions,
  RedisHelper,
  type TWebSocketClientDisconnectedFn,
  type WebSocketServerHelper,
} from '../../src/index.ts';
import { ChatComponent, DemoBindingKeys } from './chat-component.ts';
import { ChatService } from './chat-service.ts';
import { type IDemoConfig, redisOptionsFromUrl } from './config.ts';
import { type IInstanceCounter, LocalInstances, RedisInstances } from './instances.ts';
import { buildPage } from './page.ts';
import { SESSION_COOKIE, SessionStore } from './sessions.ts';

/** How long start() waits for Redis before giving up with a clear error. */
const REDIS_CONNECT_TIMEOUT_MS = 5_000;

export class DemoApplication extends BaseApplication {
  private redis?: RedisHelper;
  private readonly sessions = new SessionStore();

  constructor(
    private readonly config: IDemoConfig,
    options: IApplicationOptions = {},
  ) {
    super({ name: 'roomcast-demo', port: config.port, host: config.host, ...options });
  }

  /** The running helper, looked up when needed (it is bound only once the server listens). */
  get websocket(): WebSocketServerHelper {
    return this.get<WebSocketServerHelper>({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE });
  }

  override async preConfigure(): Promise<void> {
    const instances = await this.setupRedis();
    const chat = new ChatService({
      helper: () => this.websocket,
      instances,
      logger: this.logger,
      sessions: this.sessions,
    });
    this.bind<ChatService>({ key: DemoBindingKeys.CHAT_SERVICE }).toValue(chat);

    this.bind<Partial<IWebSocketServerOptions>>({ key: WebSocketBindingKeys.SERVER_OPTIONS }).toValue({
      identifier: 'roomcast-demo',
      // Everyone starts in the lobby; the page can leave it like any other room.
      defaultRooms: ['lobby'],
      requireEncryption: this.config.encryption,
    });
    this.bind({ key: WebSocketBindingKeys.AUTHENTICATE_HANDLER }).toValue(chat.authenticate);
    this.bind({ key: WebSocketBindingKeys.VALIDATE_ROOM_HANDLER }).toValue(chat.validateRooms);
    this.bind({ key: WebSocketBindingKeys.HISTORY_HANDLER }).toValue(chat.historyPolicy);
    // Who is in each chat room, on every instance (kept in Redis when there is one).
    this.bind({ key: WebSocketBindingKeys.PRESENCE_HANDLER }).toValue(chat.presencePolicy);
    this.bind({ key: WebSocketBindingKeys.PRESENCE_INFO_HANDLER }).toValue(chat.presenceInfo);
    this.bind({ key: WebSocketBindingKeys.CLIENT_CONNECTED_HANDLER }).toValue(chat.onConnected);
    this.bind({ key: WebSocketBindingKeys.MESSAGE_HANDLER }).toValue(chat.onMessage);

    let onDisconnected: TWebSocketClientDisconnectedFn = chat.onDisconnected;
    if (this.config.encryption) {
      const encryption = await createEcdhEncryption();
      this.bind({ key: WebSocketBindingKeys.HANDSHAKE_HANDLER }).toValue(encryption.handshakeFn);
      this.bind({ key: WebSocketBindingKeys.OUTBOUND_TRANSFORMER }).toValue(encryption.outboundTransformer);
      onDisconnected = (opts) => {
        encryption.forget(opts.clientId); // the session key dies with the connection
        // Also drop keys of clients that vanished mid-handshake (no disconnect callback for those).
        encryption.prune(this.websocket.getClients().keys());
        return chat.onDisconnected(opts);
      };
    }
    this.bind({ key: WebSocketBindingKeys.CLIENT_DISCONNECTED_HANDLER }).toValue(onDisconnected);

    await this.setupRoutes(chat);
    this.component(WebSocketComponent);
    this.component(ChatComponent); // after the WebSocket component: starts after it, stops before it
  }

  /** The application stops first (sockets, the helper's Redis connections), then our own Redis client. */
  override async stop(): Promise<void> {
    await super.stop();
    await this.redis?.disconnect();
  }

  /** With REDIS_URL: connect, hand the connection to the component, count instances in Redis. */
  private async setupRedis(): Promise<IInstanceCounter> {
    const url = this.config.redisUrl;
    if (!url) return new LocalInstances();
    this.redis = new RedisHelper({
      name: 'demo',
      ...redisOptionsFromUrl(url),
      autoConnect: false,
      // One short line per failed attempt instead of a stack trace.
      onError: ({ error }) => this.logger.warn(`Redis: ${(error as Error)?.message ?? String(error)}`),
    });
    try {
      await this.redis.connect(REDIS_CONNECT_TIMEOUT_MS);
    } catch (error) {
      await this.redis.disconnect();
      throw new Error(`[demo] cannot reach Redis at ${url.host}: ${(error as Error).message}`);
    }
    this.bind({ key: WebSocketBindingKeys.REDIS_CONNECTION }).toValue(this.redis);
    return new RedisInstances(this.redis.getClient());
  }

  private async setupRoutes(chat: ChatService): Promise<void> {
    const page = await buildPage();
    const mode = this.config.redisUrl ? 'redis' : 'single-instance';
    // Registered before the routes, so every answer of the demo carries them.
    this.hono.use('*', async (c, next) => {
      await next();
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
    });
    this.hono.get('/', (c) => c.html(page.html));
    this.hono.get('/app.js', (c) =>
      c.body(page.js, 200, { 'content-type': 'text/javascript; charset=utf-8' }),
    );
    this.hono.get('/styles.css', (c) => c.body(page.css, 200, { 'content-type': 'text/css; charset=utf-8' }));
    this.hono.get('/health', (c) => c.json({ ok: true }));
    this.hono.get('/api/config', (c) =>
      c.json({ encryption: this.config.encryption, path: this.websocket.getPath(), mode }),
    );
    // Cookie sign-in: the name is kept server-side, the page gets only an HttpOnly cookie. A JSON
    // body is required, so another site's page cannot post here without a CORS preflight.
    this.hono.post('/api/session', async (c) => {
      if (!c.req.header('content-type')?.startsWith('application/json')) return c.text('JSON expected', 415);
      const body: unknown = await c.req.json().catch(() => undefined);
      const name =
        typeof (body as { name?: unknown })?.name === 'string' ? (body as { name: string }).name.trim() : '';
      if (!ChatService.isName(name)) return c.json({ error: 'invalid name' }, 400);
      c.header('set-cookie', this.sessions.create(name));
      return c.json({ name });
    });
    // Who the cookie signs in as (the page resumes a session on load); `null` without one (a 200:
    // the page asks on every load, and an error status would be logged in the browser's console).
    this.hono.get('/api/session', (c) =>
      c.json({ name: this.sessions.nameOf(getCookie(c, SESSION_COOKIE)) ?? null }),
    );
    this.hono.delete('/api/session', (c) => {
      c.header('set-cookie', this.sessions.end(getCookie(c, SESSION_COOKIE)));
      return c.body(null, 204);
    });
    this.hono.get('/api/status', async (c) =>
      c.json({ ...(await chat.status()), mode, encryption: this.config.encryption }),
    );
  }
}

/**
 * What every page and API answer of the demo carries. The page is one HTML file, one stylesheet and
 * one script, all from this origin, with no inline script or style, so the policy allows only its
 * own origin: `connect-src 'self'` covers the WebSocket (browsers match ws:/wss: of the same host),
 * `img-src data:` the empty favicon. Nothing may frame it, sniff a type or receive a referrer.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
