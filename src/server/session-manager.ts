import { WebSocketClientStates, WebSocketCloseCodes, WebSocketEvents } from '../common/constants.ts';
import type {
  AnyRecord,
  ILogger,
  IWebSocket,
  IWebSocketClient,
  TWebSocketAuthenticateFn,
  TWebSocketClientConnectedFn,
  TWebSocketClientDisconnectedFn,
  TWebSocketHandshakeFn,
} from '../common/types.ts';
import { isPlainObject } from '../utils/json.ts';
import { fireAndLog, settleWithin } from '../utils/safe-call.ts';
import type { ClientRegistry } from './client-registry.ts';

export interface ISessionOptions<A extends object, M extends object> {
  registry: ClientRegistry<M>;
  logger: ILogger;
  authTimeout: number;
  defaultRooms: readonly string[];
  requireEncryption: boolean;
  authenticateFn: TWebSocketAuthenticateFn<A, M>;
  handshakeFn?: TWebSocketHandshakeFn<A>;
  clientConnectedFn?: TWebSocketClientConnectedFn<M>;
  clientDisconnectedFn?: TWebSocketClientDisconnectedFn;
  /** Plain system reply to one client (never through the outbound transformer). */
  reply: (client: IWebSocketClient<M>, event: string, data: unknown) => void;
  enableEncryption: (client: IWebSocketClient<M>) => void;
  subscribeBroadcast: (client: IWebSocketClient<M>) => void;
}

/**
 * The per-connection state machine: UNAUTHORIZED → AUTHENTICATING →
 * AUTHENTICATED → DISCONNECTED, with the auth timers that bound each step.
 */
export class SessionManager<A extends object = AnyRecord, M extends object = AnyRecord> {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly opts: ISessionOptions<A, M>) {}

  /** Number of pending auth timers (zero once every client has authenticated or gone). */
  get pendingTimers(): number {
    return this.timers.size;
  }

  open(clientId: string, socket: IWebSocket): IWebSocketClient<M> {
    const { registry, logger } = this.opts;
    const existing = registry.get(clientId);
    if (existing) {
      // Ids come from the upgrade; a duplicate means the application reused one.
      logger.warn(`Client id ${clientId} is already connected; closing the older connection`);
      this.close(existing, WebSocketCloseCodes.GOING_AWAY, 'Replaced by a new connection');
      this.disconnect(existing);
    }
    const now = Date.now();
    const client: IWebSocketClient<M> = {
      id: clientId,
      socket,
      state: WebSocketClientStates.UNAUTHORIZED,
      rooms: new Set(),
      backpressured: false,
      encrypted: false,
      connectedAt: now,
      lastActivity: now,
    };
    registry.add(client);
    socket.subscribe(clientId);
    this.arm(client, this.opts.authTimeout, WebSocketClientStates.UNAUTHORIZED, 'Authentication timeout');
    return client;
  }

  async authenticate(client: IWebSocketClient<M>, data: unknown): Promise<void> {
    const { reply } = this.opts;
    if (client.state === WebSocketClientStates.AUTHENTICATED) {
      reply(client, WebSocketEvents.ERROR, { message: 'Already authenticated' });
      return;
    }
    if (client.state === WebSocketClientStates.AUTHENTICATING) {
      reply(client, WebSocketEvents.ERROR, { message: 'Authentication already in progress' });
      return;
    }
    if (client.state !== WebSocketClientStates.UNAUTHORIZED) return;
    if (data !== undefined && !isPlainObject(data)) {
      reply(client, WebSocketEvents.ERROR, { message: 'authenticate data must be an object' });
      return;
    }
    const payload = (data ?? {}) as A;

    client.state = WebSocketClientStates.AUTHENTICATING;
    // A hung authenticateFn is bounded: authTimeout * 3 from this moment.
    const bound = this.opts.authTimeout * 3;
    this.arm(client, bound, WebSocketClientStates.AUTHENTICATING, 'Authentication timeout');

    const auth = await settleWithin(this.opts.authenticateFn, payload, bound);
    if (!this.isCurrent(client)) return;
    if (!auth.ok) {
      if ('timedOut' in auth) return; // the timer closes the client with 4001
      this.opts.logger.error(`authenticateFn threw for client ${client.id}`, auth.error);
      this.reject(client, WebSocketCloseCodes.AUTH_FAILED, 'Authentication failed');
      return;
    }
    if (!auth.value || !isPlainObject(auth.value)) {
      this.reject(client, WebSocketCloseCodes.AUTH_FAILED, 'Authentication failed');
      return;
    }
    const { userId, metadata } = auth.value;

    let handshake: { serverPublicKey: string; salt?: string } | undefined;
    if (this.opts.requireEncryption) {
      handshake = await this.handshake(client, userId, payload, bound);
      if (!handshake) return;
    }
    this.admit(
      client,
      userId === undefined || userId === null ? undefined : String(userId),
      metadata,
      handshake,
    );
  }

  /** Forgets a closed client. Safe to call more than once. */
  disconnect(client: IWebSocketClient<M>): void {
    this.clearTimer(client.id);
    const wasAuthenticated = client.state === WebSocketClientStates.AUTHENTICATED;
    this.opts.registry.remove(client);
    if (wasAuthenticated) {
      fireAndLog(this.opts.logger, 'clientDisconnectedFn', this.opts.clientDisconnectedFn, {
        clientId: client.id,
        userId: client.userId,
      });
    }
  }

  close(client: IWebSocketClient<M>, code: number, reason: string): void {
    try {
      client.socket.close(code, reason);
    } catch (error) {
      this.opts.logger.debug(`close(${code}) on client ${client.id} failed`, error);
    }
  }

  clearAllTimers(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async handshake(
    client: IWebSocketClient<M>,
    userId: string | undefined,
    data: A,
    bound: number,
  ): Promise<{ serverPublicKey: string; salt?: string } | undefined> {
    const { handshakeFn, logger } = this.opts;
    if (!handshakeFn) {
      logger.error('requireEncryption is true but no handshakeFn configured');
      this.reject(client, WebSocketCloseCodes.ENCRYPTION_REQUIRED, 'Encryption required');
      return undefined;
    }
    const result = await settleWithin(handshakeFn, { clientId: client.id, userId, data }, bound);
    if (!this.isCurrent(client)) return undefined;
    if (!result.ok) {
      if ('timedOut' in result) return undefined;
      logger.error(`handshakeFn threw for client ${client.id}`, result.error);
    }
    const value = result.ok ? result.value : undefined;
    if (!value || typeof value.serverPublicKey !== 'string') {
      this.reject(client, WebSocketCloseCodes.ENCRYPTION_REQUIRED, 'Encryption handshake failed');
      return undefined;
    }
    return value;
  }

  private admit(
    client: IWebSocketClient<M>,
    userId: string | undefined,
    metadata: M | undefined,
    handshake: { serverPublicKey: string; salt?: string } | undefined,
  ): void {
    const { registry, reply } = this.opts;
    this.clearTimer(client.id);
    client.state = WebSocketClientStates.AUTHENTICATED;
    client.userId = userId;
    client.metadata = metadata;
    client.lastActivity = Date.now();
    if (handshake) this.opts.enableEncryption(client);
    registry.indexUser(client);
    this.opts.subscribeBroadcast(client);
    for (const room of this.opts.defaultRooms) registry.join(client, room);
    registry.join(client, client.id);

    const connected: Record<string, unknown> = { id: client.id, userId, time: new Date().toISOString() };
    if (handshake) {
      connected.serverPublicKey = handshake.serverPublicKey;
      if (handshake.salt !== undefined) connected.salt = handshake.salt;
    }
    reply(client, WebSocketEvents.CONNECTED, connected);
    fireAndLog(this.opts.logger, 'clientConnectedFn', this.opts.clientConnectedFn, {
      clientId: client.id,
      userId,
      metadata,
    });
  }

  private reject(client: IWebSocketClient<M>, code: number, message: string): void {
    this.clearTimer(client.id);
    this.opts.reply(client, WebSocketEvents.ERROR, { message, code });
    this.close(client, code, message);
  }

  /** Closes the client with 4001 if it is still in `state` when the timer fires. */
  private arm(
    client: IWebSocketClient<M>,
    ms: number,
    state: IWebSocketClient['state'],
    reason: string,
  ): void {
    this.clearTimer(client.id);
    const timer = setTimeout(() => {
      this.timers.delete(client.id);
      if (this.isCurrent(client) && client.state === state) {
        this.close(client, WebSocketCloseCodes.AUTH_TIMEOUT, reason);
      }
    }, ms);
    this.timers.set(client.id, timer);
  }

  private clearTimer(clientId: string): void {
    const timer = this.timers.get(clientId);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.timers.delete(clientId);
    }
  }

  /** False once the client disconnected (or its id was taken by a newer connection). */
  private isCurrent(client: IWebSocketClient<M>): boolean {
    return (
      this.opts.registry.get(client.id) === client && client.state !== WebSocketClientStates.DISCONNECTED
    );
  }
}
