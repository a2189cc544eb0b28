import { channelFor, encodeEnvelope } from '../bus/envelope.ts';
import { type TWebSocketMessageType, WebSocketLimits, WebSocketMessageTypes } from '../common/constants.ts';
import { createConsoleLogger } from '../common/logger.ts';
import type { ILogger, IRedisConnection, IWebSocketEmitterOptions } from '../common/types.ts';
import {
  closeRedisClient,
  isRedisConnection,
  type TRedisClient,
  waitForRedisReady,
} from '../redis/wait-ready.ts';

const PREFIX = '[WebSocketEmitter]';

/**
 * Publishes to WebSocket clients from any process (workers, cron jobs) through
 * Redis alone. Its messages carry `serverId: 'emitter'`, so every server
 * instance delivers them.
 */
export class WebSocketEmitter {
  static readonly SERVER_ID = 'emitter';

  readonly identifier: string;
  private readonly connection: IRedisConnection;
  private readonly logger: ILogger;
  private readonly readyTimeout: number;
  /** Publishes once `configure()` saw it ready. */
  private client?: TRedisClient;
  /** Duplicated by the constructor until configure() takes it (a configure after a shutdown duplicates afresh). */
  private idle?: TRedisClient;
  private configured?: Promise<void>;

  constructor(opts: IWebSocketEmitterOptions) {
    if (!opts || !isRedisConnection(opts.redisConnection)) {
      throw new Error(`${PREFIX} Invalid redis connection!`);
    }
    this.identifier = opts.identifier ?? 'WebSocketEmitter';
    this.connection = opts.redisConnection;
    this.logger = opts.logger ?? createConsoleLogger(this.identifier);
    this.readyTimeout = opts.redisReadyTimeout ?? WebSocketLimits.REDIS_READY_TIMEOUT;
    // Like the server helper: duplicate now, connect in configure() (when lazyConnect left it in `wait`).
    this.idle = this.duplicate();
  }

  /** Connects the duplicated Redis connection if it waits for it, and waits (bounded) until it is ready. */
  configure(): Promise<void> {
    this.configured ??= (async () => {
      const client = this.idle ?? this.duplicate();
      this.idle = undefined;
      try {
        await waitForRedisReady(client, this.readyTimeout);
      } catch (error) {
        this.configured = undefined;
        await closeRedisClient(client);
        throw error;
      }
      this.client = client;
    })();
    return this.configured;
  }

  private duplicate(): TRedisClient {
    const client = this.connection.getClient().duplicate();
    client.on('error', (error: unknown) =>
      this.logger.warn('Redis error', error instanceof Error ? error.message : String(error)),
    );
    return client;
  }

  async toClient(opts: { clientId: string; event: string; data: unknown }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.CLIENT, requireTarget('clientId', opts?.clientId), opts);
  }

  async toUser(opts: { userId: string; event: string; data: unknown }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.USER, requireTarget('userId', opts?.userId), opts);
  }

  async toRoom(opts: { room: string; event: string; data: unknown; exclude?: string[] }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.ROOM, requireTarget('room', opts?.room), opts);
  }

  async broadcast(opts: { event: string; data: unknown; exclude?: string[] }): Promise<void> {
    return await this.publish(WebSocketMessageTypes.BROADCAST, undefined, opts);
  }

  async shutdown(): Promise<void> {
    const clients = [this.client, this.idle].filter((c): c is TRedisClient => c !== undefined);
    this.client = undefined;
    this.idle = undefined;
    this.configured = undefined;
    await Promise.all(clients.map((client) => closeRedisClient(client)));
  }

  /**
   * Rejects (never throws synchronously) when the emitter is not configured,
   * Redis is not connected, or the arguments are wrong, so a caller that awaits
   * knows the message did not leave.
   */
  private async publish(
    type: TWebSocketMessageType,
    target: string | undefined,
    opts: { event: string; data: unknown; exclude?: string[] },
  ): Promise<void> {
    if (typeof opts?.event !== 'string' || opts.event.length === 0) {
      throw new Error(`${PREFIX} event must be a non-empty string`);
    }
    const client = this.client;
    if (!client) throw new Error(`${PREFIX} not configured: call configure() first`);
    if (client.status !== 'ready') {
      throw new Error(`${PREFIX} Redis is not connected (status: ${client.status}); message not published`);
    }
    const envelope = encodeEnvelope({
      serverId: WebSocketEmitter.SERVER_ID,
      type,
      ...(target !== undefined ? { target } : {}),
      event: opts.event,
      data: opts.data,
      ...(opts.exclude && opts.exclude.length > 0 ? { exclude: opts.exclude } : {}),
    });
    await client.publish(channelFor(type, target), envelope);
  }
}

function requireTarget(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`${PREFIX} ${name} must be a non-empty string`);
  }
  return value;
}
