import { validateCloseCode, validateCommand } from '../bus/commands.ts';
import {
  type ICrossInstanceBus,
  type IRedisBusStats,
  LocalOnlyBus,
  RedisBus,
} from '../bus/cross-instance-bus.ts';
import { WebSocketCloseCodes, WebSocketErrorCodes, WebSocketMessageTypes } from '../common/constants.ts';
import { clientFields, debugLogged } from '../common/log.ts';
import { isValidRoomName } from '../common/room-names.ts';
import { assertBunRuntime } from '../common/runtime.ts';
import type {
  AnyRecord,
  IBunServer,
  IBunWebSocketConfig,
  IBunWebSocketHandler,
  ILogger,
  IRedisSocketMessage,
  IWebSocket,
  IWebSocketClient,
  IWebSocketData,
} from '../common/types.ts';
import { HistoryError } from '../history/errors.ts';
import type { IHistoryOptions, IHistoryResult } from '../history/query.ts';
import type { ServerCounters } from '../metrics/counters.ts';
import type { PrometheusMetrics } from '../metrics/prometheus.ts';
import { type IPresenceMember, type IPresenceStats, presenceStats } from '../presence/types.ts';
import type { RoomKeys } from '../room-keys/room-keys.ts';
import { frameFromJson, serializeData, utf8LengthExceeds } from '../utils/json.ts';
import { fireAndLog } from '../utils/safe-call.ts';
import type { AckAnswers, AckCollector } from './ack-answers.ts';
import type { Acknowledgements } from './acknowledgements.ts';
import { createBunWebSocketHandler } from './bun-handler.ts';
import type { ClientRegistry } from './client-registry.ts';
import { closeGradually, type IShutdownOptions, resolveDrain } from './drain.ts';
import type {
  EventRouter,
  IEventRouter,
  TEventHandler,
  TEventMiddleware,
  TRouterEventName,
  TServerEventMap,
} from './event-router.ts';
import type { InboundRouter } from './inbound-router.ts';
import type { LocalDelivery } from './local-delivery.ts';
import { createServerNode, type IServerNode, startServerNode, stopServerNode } from './node.ts';
import type { IResolvedServerSettings, IWebSocketServerOptions } from './options.ts';
import { originRefusedResponse, type TOriginCheck } from './origin-policy.ts';
import type { RoomRecovery } from './recovery.ts';
import { deliverPositionedMessage, type RoomHistory } from './room-history.ts';
import type { RoomPresence } from './room-presence.ts';
import type { IRoomQuota, RoomRequests } from './room-requests.ts';
import type { ICommandResult, IInspectResult, ServerCommands } from './server-commands.ts';
import type { SessionManager } from './session-manager.ts';
import { createUpgradeView } from './upgrade.ts';

/** Default wait for a client's acknowledgement (`sendToClient({ ack: true })`), ms. */
const ACK_TIMEOUT = 5_000;

export interface ISendOptions<T = unknown> {
  /**
   * A client id or a room name; `{ userId }` for every connection of that user on every
   * instance; omit to broadcast.
   */
  destination?: string | { userId: string };
  payload: { topic: string; data: T };
  /** Client ids that must not receive it, wherever they are connected (not for history rooms). */
  exclude?: string[];
  doLog?: boolean;
  cb?: () => void;
}

/** What `handleUpgrade` needs of a Bun server (`Server` from `bun` has it). */
export interface IBunUpgradingServer extends IBunServer {
  upgrade(request: Request, options: { data: IWebSocketData }): boolean;
  requestIP(request: Request): { address: string } | null;
}

/**
 * Bun-native WebSocket server helper: post-connection authentication, rooms,
 * passive heartbeat and cross-instance delivery over Redis Pub/Sub.
 *
 * A thin facade: the registry, sessions, inbound routing, local delivery, the
 * cross-instance bus, history, presence, acknowledgements, server commands, the
 * heartbeat sweeper and the Bun adapter each live in their own module; node.ts
 * builds and wires them, and the public methods here delegate to them.
 */
export class WebSocketServerHelper<
  AuthDataType extends object = AnyRecord,
  MetadataType extends object = AnyRecord,
  /** Client → server app events (the client SDK's `Out` map), typing `on()`. */
  Events extends object = TServerEventMap,
  /** Event → what its request is answered with (the client SDK's `Replies` map). */
  Replies extends object = TServerEventMap,
> {
  readonly identifier: string;
  /** Unique per instance; messages carrying it are skipped when they come back from Redis. */
  readonly serverId: string = crypto.randomUUID();

  /** Every part, wired (node.ts); started and stopped as a whole. The fields below are its parts, kept directly. */
  private readonly node: IServerNode<AuthDataType, MetadataType>;
  private readonly settings: IResolvedServerSettings;
  /** Unset until given as an option or met in `handleUpgrade`. */
  private server?: IBunServer;
  private readonly originAllowed: TOriginCheck;
  private readonly logger: ILogger;
  private readonly registry: ClientRegistry<MetadataType>;
  /** Running totals behind `getStats()` and the Prometheus metrics. */
  private readonly counters: ServerCounters;
  private readonly metrics?: PrometheusMetrics;
  private readonly delivery: LocalDelivery<MetadataType>;
  private readonly sessions: SessionManager<AuthDataType, MetadataType>;
  private readonly inbound: InboundRouter<AuthDataType, MetadataType>;
  private readonly events: EventRouter<MetadataType>;
  private readonly roomRequests: RoomRequests<MetadataType>;
  private readonly bus: ICrossInstanceBus;
  /** Only with `historyFn`: rooms without history never reach it. */
  private readonly roomHistory?: RoomHistory<MetadataType>;
  private readonly recovery?: RoomRecovery<MetadataType>;
  private readonly acks: Acknowledgements<MetadataType>;
  private readonly ackAnswers: AckCollector<MetadataType>;
  private readonly commands: ServerCommands<MetadataType>;
  /** Only with `presenceFn`. */
  private readonly roomPresence?: RoomPresence<MetadataType>;
  /** Sealed rooms (`roomKeys`): their generations and counts here; undefined when off. */
  readonly roomKeys?: RoomKeys<MetadataType>;
  private readonly bunConfig: IBunWebSocketConfig;
  private bunHandler?: IBunWebSocketHandler;
  private configured?: Promise<void>;
  private isConfigured = false;
  private unboundWarned = false;
  /** The whole shutdown, drain included (what `shutdown()` returns). */
  private stopping?: Promise<void>;
  private draining = false;
  /** Set once the drain (if any) is over: from then on nothing is delivered. */
  private shuttingDown?: Promise<void>;

  constructor(opts: IWebSocketServerOptions<AuthDataType, MetadataType>) {
    assertBunRuntime('WebSocketServerHelper');
    // The parts and their wiring: node.ts. The facade keeps a direct reference to each part.
    const node = createServerNode<AuthDataType, MetadataType>(opts, {
      serverId: this.serverId,
      onBusMessage: (message, dataJson) => this.deliverFromBus(message, dataJson),
      isStopping: () => this.stopping !== undefined,
    });
    this.node = node;
    this.identifier = opts.identifier;
    this.server = opts.server;
    this.settings = node.settings;
    this.originAllowed = node.originAllowed;
    this.logger = node.logger;
    this.bunConfig = node.bunConfig;
    this.registry = node.registry;
    this.counters = node.counters;
    this.metrics = node.metrics;
    this.delivery = node.delivery;
    this.sessions = node.sessions;
    this.inbound = node.inbound;
    this.events = node.events;
    this.roomRequests = node.roomRequests;
    this.bus = node.bus;
    this.roomHistory = node.roomHistory;
    this.recovery = node.recovery;
    this.acks = node.acks;
    this.ackAnswers = node.ackAnswers;
    this.commands = node.commands;
    this.roomPresence = node.roomPresence;
    this.roomKeys = node.roomKeys;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Connects Redis (if any), subscribes the channels and starts the heartbeat sweep. */
  configure(): Promise<void> {
    if (this.stopping)
      return Promise.reject(new Error('[WebSocketServerHelper] configure() after shutdown()'));
    this.configured ??= (async () => {
      try {
        await startServerNode(this.node);
      } catch (error) {
        this.configured = undefined; // allow a retry
        throw error;
      }
      this.isConfigured = true;
      if (this.bus instanceof LocalOnlyBus) {
        this.logger.info('No redisConnection: running in single-instance mode (no cross-instance delivery)');
      }
    })();
    return this.configured;
  }

  /**
   * Stops the sweep, closes every client with 1001, clears the indexes and quits Redis. Idempotent.
   * With `drainWindow`, first closes the clients with 1012 a few at a time over that window, still
   * delivering to the rest and refusing new ones, so they reconnect to other instances gradually.
   */
  shutdown(opts?: IShutdownOptions): Promise<void> {
    if (this.stopping) return this.stopping;
    let drain: ReturnType<typeof resolveDrain>;
    try {
      drain = resolveDrain(opts, WebSocketCloseCodes.SERVICE_RESTART);
    } catch (error) {
      return Promise.reject(error);
    }
    this.stopping = (async () => {
      if (drain.window > 0) {
        this.draining = true;
        await closeGradually([...this.registry.clients.values()], drain.window, (client) => {
          if (this.registry.get(client.id) === client) this.sessions.close(client, drain.code, drain.reason);
        });
        // Let the last closes complete (bounded), so their disconnects run like any other.
        for (let waited = 0; this.registry.clients.size > 0 && waited < 1_000; waited += 50)
          await Bun.sleep(50);
      }
      await this.closeEverything();
    })();
    return this.stopping;
  }

  /**
   * Ready to take clients: configured, not shutting down or draining, and (in
   * Redis mode) both Redis connections up. `reasons` says what is missing.
   */
  getReadiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.stopping) reasons.push(this.draining && !this.shuttingDown ? 'draining' : 'shut down');
    else if (!this.isConfigured) reasons.push('not configured');
    else reasons.push(...this.bus.connectionProblems());
    return { ready: reasons.length === 0, reasons };
  }

  /** True once `shutdown()` was called (drain included): new connections are refused from then on. */
  isStopping(): boolean {
    return this.stopping !== undefined;
  }

  private closeEverything(): Promise<void> {
    this.shuttingDown ??= stopServerNode(this.node);
    return this.shuttingDown;
  }

  getBunWebSocketHandler(): IBunWebSocketHandler {
    this.bunHandler ??= createBunWebSocketHandler(this, this.bunConfig, () => crypto.randomUUID());
    return this.bunHandler;
  }

  /**
   * Handles one client → server app event, typed by the `Events` map (see `router()` for other
   * maps). The handler gets `{ event, data, id, clientId, userId, metadata, client, state }`; what it
   * returns (or resolves to) answers a request with `ws:reply`, a thrown `WebSocketRequestError`
   * refuses it with its code. Events without a handler go to `messageHandler`. Returns a remover.
   */
  on<K extends TRouterEventName<Events>>(
    event: K,
    handler: TEventHandler<Events, Replies, K, MetadataType>,
  ): () => void {
    return this.events.on(event, handler);
  }

  /**
   * Adds a middleware, run in registration order before the handlers and `messageHandler` for every
   * inbound app event; throwing a `WebSocketRequestError` refuses the event with its code. Returns a remover.
   */
  use(middleware: TEventMiddleware<MetadataType>): () => void {
    return this.events.use(middleware);
  }

  /**
   * The same router typed by other maps, e.g. the ones shared with the client SDK and the
   * `state` the middleware fills in: `helper.router<ClientEvents, Replies, { user: User }>()`.
   */
  router<
    In extends object = Events,
    R extends object = Replies,
    State extends object = AnyRecord,
  >(): IEventRouter<In, R, MetadataType, State> {
    return this.events as unknown as IEventRouter<In, R, MetadataType, State>;
  }

  getPath(): string {
    return this.settings.path;
  }

  /**
   * Upgrades `request` to a WebSocket served by this helper, for the application's `fetch`:
   * the path must be `getPath()` (else 404) and the request a WebSocket upgrade (else 426); the
   * `Origin` must pass `allowedOrigins` (else 403); while shutting down it is 503. The socket gets a
   * fresh client id, and `authenticateFn` a read-only view of the request (headers, cookies, peer
   * address, URL, query) with `data`. Returns `undefined` once Bun took the request (return that
   * from `fetch`), else the `Response` to send. The first call also gives the helper `server`
   * when the `server` option was left out.
   */
  handleUpgrade(request: Request, server: IBunUpgradingServer, data?: unknown): Response | undefined {
    const url = new URL(request.url);
    if (url.pathname !== this.settings.path) return new Response('Not Found', { status: 404 });
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('Upgrade Required', { status: 426, headers: { upgrade: 'websocket' } });
    }
    if (!this.originAllowed(request)) {
      this.counters.countUpgradeRefused('origin');
      return originRefusedResponse();
    }
    if (this.stopping) {
      this.counters.countUpgradeRefused('draining');
      return new Response('Service Unavailable: draining', { status: 503, headers: { 'retry-after': '1' } });
    }
    this.bindServer(server);
    const upgrade = createUpgradeView({ request, url, address: server.requestIP(request)?.address, data });
    if (server.upgrade(request, { data: { clientId: crypto.randomUUID(), upgrade } })) return undefined;
    return new Response('WebSocket upgrade failed', { status: 500 });
  }

  /** @internal Gives the helper its Bun server when the `server` option was left out (the first one wins). */
  bindServer(server: IBunServer): void {
    if (this.server) return;
    this.server = server;
    this.delivery.bindServer(server);
  }

  /**
   * The Prometheus metrics (`metrics` option on): `registry` is the prom-client
   * `Registry` to mount yourself (`await registry.metrics()`, `registry.contentType`).
   * Undefined when metrics are off.
   */
  getMetrics(): PrometheusMetrics | undefined {
    return this.metrics;
  }

  /**
   * Counts an upgrade request the application's fetch handler refused before a socket existed
   * (`roomcast_upgrades_refused_total`); the component calls it for its own checks.
   */
  /**
   * @internal Caps on rooms across connections (the component's `clientCaps`), checked on every
   * client `join` that adds rooms; undefined removes them.
   */
  setRoomQuota(quota: IRoomQuota<MetadataType> | undefined): void {
    this.roomRequests.quota = quota;
  }

  countRefusedUpgrade(reason: 'origin' | 'draining' | 'rate' | 'address'): void {
    this.counters.countUpgradeRefused(reason);
  }

  // ------------------------------------------------------ lifecycle entry points

  /** What the Bun `open` callback calls; usable directly to drive the helper without a network. */
  onClientConnect(opts: { clientId: string; socket: IWebSocket }): void {
    if (this.stopping) {
      if (this.draining && !this.shuttingDown) {
        opts.socket.close(WebSocketCloseCodes.SERVICE_RESTART, 'Server draining: reconnect');
      } else {
        opts.socket.close(WebSocketCloseCodes.GOING_AWAY, 'Server shutting down');
      }
      return;
    }
    if (!this.server && !this.unboundWarned) {
      this.unboundWarned = true;
      this.logger.error(
        'a socket opened but the helper has no Bun server: pass `server` or upgrade through handleUpgrade(); nothing published reaches it',
      );
    }
    this.sessions.open(opts.clientId, opts.socket);
  }

  /** What the Bun `message` callback calls. */
  onClientMessage(opts: { clientId: string; raw: unknown; socket?: IWebSocket }): void {
    const client = this.registry.get(opts.clientId);
    if (!client || (opts.socket && client.socket !== opts.socket)) return;
    this.inbound.route(client, opts.raw);
  }

  /** What the Bun `close` callback calls. */
  onClientDisconnect(opts: { clientId: string; socket?: IWebSocket; code?: number }): void {
    const client = this.registry.get(opts.clientId);
    if (!client || (opts.socket && client.socket !== opts.socket)) return;
    this.counters.countClose(opts.code ?? 1005); // 1005: no code given
    if (debugLogged(this.logger)) {
      this.logger.debug(
        `client ${client.id} disconnected`,
        clientFields(client, { code: opts.code ?? 1005 }),
      );
    }
    this.sessions.disconnect(client);
  }

  /** What the Bun `drain` callback calls: the socket's send buffer has room again. */
  onClientDrain(opts: { clientId: string; socket?: IWebSocket }): void {
    const client = this.registry.get(opts.clientId);
    if (client && (!opts.socket || client.socket === opts.socket)) client.backpressured = false;
  }

  // ------------------------------------------------------------------- queries

  getClients(): Map<string, IWebSocketClient<MetadataType>>;
  getClients(opts: { id: string }): IWebSocketClient<MetadataType> | undefined;
  getClients(opts?: {
    id?: string;
  }): IWebSocketClient<MetadataType> | Map<string, IWebSocketClient<MetadataType>> | undefined;
  getClients(opts?: {
    id?: string;
  }): IWebSocketClient<MetadataType> | Map<string, IWebSocketClient<MetadataType>> | undefined {
    if (opts?.id !== undefined) return this.registry.get(opts.id);
    return this.registry.clients;
  }

  getClientsByUser(opts: { userId: string }): IWebSocketClient<MetadataType>[] {
    return [...this.registry.userClients(opts.userId)];
  }

  getClientsByRoom(opts: { room: string }): IWebSocketClient<MetadataType>[] {
    return [...this.registry.roomMembers(opts.room)];
  }

  /**
   * Index sizes, pending auth timers and the Redis bus counters (absent in
   * single-instance mode). `clients/users/rooms/authTimers/expiryTimers` are all zero once everyone left.
   */
  getStats(): {
    clients: number;
    users: number;
    rooms: number;
    authTimers: number;
    expiryTimers: number;
    serverId: string;
    bus?: IRedisBusStats;
    recovering?: number;
  } {
    const stats = {
      ...this.registry.sizes(),
      authTimers: this.sessions.pendingTimers,
      expiryTimers: this.sessions.refresh.size,
      serverId: this.serverId,
      ...(this.recovery ? { recovering: this.recovery.pendingRooms } : {}),
    };
    return this.bus instanceof RedisBus ? { ...stats, bus: { ...this.bus.stats } } : stats;
  }

  // --------------------------------------------------------------------- rooms

  joinRoom(opts: { clientId: string; room: string }): void {
    const client = this.registry.get(opts.clientId);
    if (!client) return;
    this.assertRoomName(opts.room);
    this.registry.join(client, opts.room);
  }

  leaveRoom(opts: { clientId: string; room: string }): void {
    const client = this.registry.get(opts.clientId);
    if (client) this.registry.leave(client, opts.room);
  }

  /** Irreversible: the client leaves native fan-out and is reached only through the outbound transformer. */
  enableClientEncryption(opts: { clientId: string }): void {
    const client = this.registry.get(opts.clientId);
    if (client) this.registry.markEncrypted(client);
  }

  // ------------------------------------------------------------ local delivery

  sendToClient(opts: { clientId: string; event: string; data: unknown; doLog?: boolean; ack?: false }): void;
  /**
   * With `ack: true`: resolves with the client's answer once its SDK listeners for `event` have
   * returned (their promises settled): the first value that is not undefined, else undefined.
   * Works also when the client is connected to another instance; rejects with a
   * `WebSocketAckError` (`ACK_TIMEOUT` after `timeout`, default 5 000 ms; `NOT_DELIVERED`;
   * `ANSWER_TOO_LARGE` over `WebSocketLimits.MAX_ACK_ANSWER_BYTES`).
   */
  sendToClient<R = unknown>(opts: {
    clientId: string;
    event: string;
    data: unknown;
    doLog?: boolean;
    ack: true;
    timeout?: number;
  }): Promise<R>;
  sendToClient(opts: {
    clientId: string;
    event: string;
    data: unknown;
    doLog?: boolean;
    ack?: boolean;
    timeout?: number;
  }): undefined | Promise<unknown> {
    if (opts.doLog) this.logger.info(`sent "${opts.event}" to client ${opts.clientId}`);
    if (opts.ack === true) {
      if (this.shuttingDown) return Promise.reject(new Error('[WebSocketServerHelper] shut down'));
      const timeout = opts.timeout ?? ACK_TIMEOUT;
      if (typeof timeout !== 'number' || !(timeout > 0)) {
        return Promise.reject(
          new Error('[WebSocketServerHelper] sendToClient(): timeout must be a positive number'),
        );
      }
      try {
        return this.acks.send(opts.clientId, opts.event, opts.data, timeout);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.shuttingDown) return;
    this.delivery.toClient(opts.clientId, opts.event, opts.data);
  }

  sendToUser(opts: { userId: string; event: string; data: unknown; exclude?: string[] }): void {
    if (this.shuttingDown) return;
    this.delivery.toUser(opts.userId, opts.event, opts.data, opts.exclude);
  }

  sendToRoom(opts: { room: string; event: string; data: unknown; exclude?: string[] }): void {
    if (this.shuttingDown) return;
    this.delivery.toRoom(opts.room, opts.event, opts.data, opts.exclude);
  }

  broadcast(opts: { event: string; data: unknown; exclude?: string[] }): void {
    if (this.shuttingDown) return;
    this.delivery.toAll(opts.event, opts.data, opts.exclude);
  }

  // ------------------------------------------------------ cross-instance delivery

  /**
   * Delivers locally and publishes to Redis for the other instances. A
   * destination is a client id (when such a client is connected here) or a room;
   * without one, every authenticated client everywhere. Never throws because of
   * Redis: while it is unreachable, remote delivery is skipped.
   */
  send<T = unknown>(opts: ISendOptions<T> & { ack?: false }): void;
  /**
   * To a room, `{ userId }` or everyone (no destination) with `ack: true`: delivers to every
   * recipient on every instance and resolves, once each answered or after `timeout` (default
   * 5 000 ms), with an `AckAnswers` (answers by client id, the recipients that did not answer).
   * Never for a room that keeps history (rejects). See docs/cluster.md, "Acknowledgements".
   */
  send<T = unknown, R = unknown>(
    opts: ISendOptions<T> & { destination?: { userId: string }; ack: true; timeout?: number },
  ): Promise<AckAnswers<R>>;
  /**
   * To a string destination with `ack: true`: a connected client's id (on any instance) resolves
   * like `sendToClient({ ack: true })` with its answer; a room resolves with an `AckAnswers`.
   */
  send<T = unknown, R = unknown>(
    opts: ISendOptions<T> & { destination: string; ack: true; timeout?: number },
  ): Promise<R | AckAnswers<R>>;
  send<T = unknown>(
    opts: ISendOptions<T> & { ack?: boolean; timeout?: number },
  ): undefined | Promise<unknown> {
    if (opts.ack === true) {
      try {
        return this.sendWithAck(opts);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.shuttingDown) return;
    const { destination, payload } = opts;
    const event = payload?.topic;
    if (typeof event !== 'string' || event.length === 0) {
      throw new Error('[WebSocketServerHelper] send() needs payload.topic (a non-empty string)');
    }
    const data = payload.data;
    const exclude = readExclude(opts.exclude);
    // Serialize the payload once; the local frame and the Redis envelope share it.
    const dataJson = serializeData(data);
    if (dataJson !== undefined && this.bus instanceof RedisBus) this.assertEnvelopeFits(dataJson);
    if (typeof destination === 'object' && destination !== null) {
      this.sendToUserEverywhere(destination.userId, event, data, dataJson, exclude);
      this.afterSend(opts, event, destination);
      return;
    }
    // A room (not a local client id) that keeps history: its policy is asked once per send().
    const historyPolicy =
      this.roomHistory && destination !== undefined && !this.registry.get(destination)
        ? this.roomHistory.policyFor(destination)
        : undefined;
    if (historyPolicy) {
      if (exclude) {
        throw new Error(
          '[WebSocketServerHelper] send(): exclude is not supported for rooms that keep history',
        );
      }
      // Positioned (and, over Redis, delivered when Pub/Sub brings it back).
      this.roomHistory!.publish(destination!, historyPolicy, event, data, dataJson);
      this.afterSend(opts, event, destination!);
      return;
    }
    const frame = frameFromJson(event, dataJson);
    const excluded = exclude ? { exclude } : {};
    if (destination === undefined) {
      this.delivery.toAll(event, data, exclude, frame);
      this.bus.publish(
        { serverId: this.serverId, type: WebSocketMessageTypes.BROADCAST, event, data, ...excluded },
        dataJson,
      );
    } else {
      if (this.registry.get(destination)) {
        if (!exclude?.includes(destination)) this.delivery.toClient(destination, event, data, frame);
      } else this.delivery.toRoom(destination, event, data, exclude, frame);
      // Every authenticated client is in its own id room, so a room message
      // reaches a client id on whichever instance holds it.
      this.bus.publish(
        {
          serverId: this.serverId,
          type: WebSocketMessageTypes.ROOM,
          target: destination,
          event,
          data,
          ...excluded,
        },
        dataJson,
      );
    }
    this.afterSend(opts, event, destination);
  }

  private sendWithAck(opts: ISendOptions<unknown> & { timeout?: number }): Promise<unknown> {
    const prefix = '[WebSocketServerHelper] send() with ack:';
    const { destination, payload } = opts;
    const event = payload?.topic;
    if (typeof event !== 'string' || event.length === 0) {
      throw new Error(`${prefix} needs payload.topic (a non-empty string)`);
    }
    if (this.shuttingDown) throw new Error('[WebSocketServerHelper] shut down');
    const timeout = opts.timeout ?? ACK_TIMEOUT;
    if (typeof timeout !== 'number' || !(timeout > 0))
      throw new Error(`${prefix} timeout must be a positive number`);
    const exclude = readExclude(opts.exclude);
    if (typeof destination === 'string') {
      if (this.registry.get(destination) && !exclude?.includes(destination)) {
        return this.acks.send(destination, event, payload.data, timeout);
      }
      if (this.roomHistory?.policyFor(destination)) {
        throw new Error(`${prefix} not supported for rooms that keep history`);
      }
      return this.ackAnswers.collect({ room: destination }, event, payload.data, timeout, exclude);
    }
    if (destination !== undefined) {
      const userId = (destination as { userId?: unknown } | null)?.userId;
      if (typeof userId !== 'string' || userId.length === 0) {
        throw new Error(`${prefix} destination.userId must be a non-empty string`);
      }
      return this.ackAnswers.collect({ userId }, event, payload.data, timeout, exclude);
    }
    return this.ackAnswers.collect({}, event, payload.data, timeout, exclude);
  }

  /** Every connection of a user: the local ones, then a user message for the other instances. */
  private sendToUserEverywhere(
    userId: unknown,
    event: string,
    data: unknown,
    dataJson: string | undefined,
    exclude: string[] | undefined,
  ): void {
    if (typeof userId !== 'string' || userId.length === 0) {
      throw new Error('[WebSocketServerHelper] send(): destination.userId must be a non-empty string');
    }
    // The frame is built from the JSON the envelope carries too: the payload is serialized once.
    this.delivery.toUser(userId, event, data, exclude, frameFromJson(event, dataJson));
    this.bus.publish(
      {
        serverId: this.serverId,
        type: WebSocketMessageTypes.USER,
        target: userId,
        event,
        data,
        ...(exclude ? { exclude } : {}),
      },
      dataJson,
    );
  }

  private afterSend(
    opts: ISendOptions<unknown>,
    event: string,
    destination: string | { userId: string } | undefined,
  ): void {
    if (opts.doLog) {
      const to = typeof destination === 'object' ? `user ${destination.userId}` : (destination ?? 'everyone');
      this.logger.info(`send "${event}" to ${to}`);
    }
    if (opts.cb) setImmediate(() => fireAndLog(this.logger, 'send() callback', opts.cb, undefined));
  }

  // ---------------------------------------------------------- server commands

  /**
   * Closes a client, or every connection of a user, on every instance, with `code` (1000 or
   * 3000-4999; default 1000) and `reason`. Resolves once the other instances reported how many
   * connections they closed, or after `wait` ms (default 1 000): see `ICommandResult`.
   */
  disconnect(opts: {
    clientId?: string;
    userId?: string;
    code?: number;
    reason?: string;
    /** `false`: close with 4008 (`WebSocketCloseCodes.NO_RECONNECT`), which the SDK does not reconnect after. */
    reconnect?: boolean;
    wait?: number;
  }): Promise<ICommandResult> {
    const prefix = '[WebSocketServerHelper] disconnect():';
    try {
      const { target } = validateCommand(prefix, opts, false);
      const code = validateCloseCode(prefix, opts.code, opts.reconnect);
      const reason = String(opts.reason ?? 'Disconnected by the server').slice(0, 120);
      return this.commands.run({ kind: 'disconnect', target, code, reason }, opts.wait);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Makes a client, or every connection of a user, join `rooms` on every instance. The room
   * name rules apply (invalid names throw); `validateRoomFn` is not called (it checks clients'
   * own requests) and `limits.maxRoomsPerClient` does not apply. Resolves like `disconnect()`.
   */
  joinRooms(opts: {
    clientId?: string;
    userId?: string;
    rooms: string[];
    wait?: number;
  }): Promise<ICommandResult> {
    return this.roomCommand('join', opts);
  }

  /**
   * Describes a client's, or every connection of a user's, connections on every instance (who,
   * where, which rooms, encrypted or not; never metadata or payloads), without changing them.
   * Resolves like `disconnect()`; each instance describes at most 100 connections.
   */
  connections(opts: { clientId?: string; userId?: string; wait?: number }): Promise<IInspectResult> {
    try {
      const { target } = validateCommand('[WebSocketServerHelper] connections():', opts, false);
      return this.commands.inspect(target, opts.wait);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Makes a client, or every connection of a user, leave `rooms` on every instance (its own id room stays). */
  leaveRooms(opts: {
    clientId?: string;
    userId?: string;
    rooms: string[];
    wait?: number;
  }): Promise<ICommandResult> {
    return this.roomCommand('leave', opts);
  }

  private roomCommand(
    kind: 'join' | 'leave',
    opts: { clientId?: string; userId?: string; rooms: string[]; wait?: number },
  ): Promise<ICommandResult> {
    try {
      const { target, rooms } = validateCommand(`[WebSocketServerHelper] ${kind}Rooms():`, opts, true);
      return this.commands.run({ kind, target, rooms }, opts.wait);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // ----------------------------------------------------------------- presence

  /**
   * Every member of a presence room on every instance (`{ clientId, userId?, info? }`), read
   * from Redis in Redis mode (members of instances whose liveness expired are left out).
   * Rejects when `presenceFn` is off or does not give the room presence, and when Redis cannot be read.
   */
  async presence(opts: { room: string }): Promise<IPresenceMember[]> {
    return this.presenceRoom(opts?.room).members(opts.room);
  }

  /** `{ clients, users }` of a presence room on every instance (same rules as `presence()`). */
  async presenceStats(opts: { room: string }): Promise<IPresenceStats> {
    return presenceStats(await this.presence(opts));
  }

  private presenceRoom(room: string): RoomPresence<MetadataType> {
    this.assertRoomName(room);
    const presence = this.roomPresence;
    if (!presence) throw new Error('[WebSocketServerHelper] presence() needs the presenceFn option');
    if (!presence.isPresenceRoom(room)) {
      throw new Error(`[WebSocketServerHelper] room ${JSON.stringify(room)} keeps no presence (presenceFn)`);
    }
    return presence;
  }

  // ------------------------------------------------------------------ history

  /**
   * A history room's retained publications and current position (see docs/recovery.md).
   * Rejects with a `HistoryError` (`code`: `INVALID_REQUEST`, `HISTORY_UNAVAILABLE`,
   * `UNRECOVERABLE_POSITION`).
   */
  async history(opts: IHistoryOptions): Promise<IHistoryResult> {
    if (!this.roomHistory) {
      throw new HistoryError(
        WebSocketErrorCodes.HISTORY_UNAVAILABLE,
        '[WebSocketServerHelper] history() needs the historyFn option',
      );
    }
    return this.roomHistory.history(opts);
  }

  /** Forgets a room's history and position: the next publication starts a new epoch at offset 1. */
  async removeHistory(opts: { room: string }): Promise<void> {
    this.assertRoomName(opts?.room);
    await this.roomHistory?.store.remove(opts.room);
  }

  /**
   * `dataJson` is the payload as it came from Redis: the frame is built around it, never
   * serialized again (encrypted recipients still get `data` through the transformer).
   */
  private deliverFromBus(message: IRedisSocketMessage, dataJson?: string): void {
    if (this.shuttingDown) return;
    const { type, target, event, data, exclude } = message;
    const frame = dataJson === undefined ? undefined : frameFromJson(event, dataJson);
    switch (type) {
      case WebSocketMessageTypes.CLIENT:
        if (target !== undefined) this.delivery.toClient(target, event, data, frame);
        return;
      case WebSocketMessageTypes.USER:
        if (target !== undefined) this.delivery.toUser(target, event, data, exclude, frame);
        return;
      case WebSocketMessageTypes.ROOM:
        if (target === undefined) return;
        // With historyFn: a publication whose position disagrees with this instance's policy is reported.
        if (this.roomHistory && message.serverId !== this.serverId) {
          this.roomHistory.checkReceived(target, message, dataJson);
        }
        if (message.offset === undefined) this.delivery.toRoom(target, event, data, exclude, frame);
        else deliverPositionedMessage(this.delivery, message, this.roomHistory, dataJson);
        return;
      case WebSocketMessageTypes.BROADCAST:
        this.delivery.toAll(event, data, exclude, frame);
        return;
    }
  }

  /** A payload that alone passes `maxEnvelopeBytes` could not reach the other instances: refused before anything is sent. */
  private assertEnvelopeFits(dataJson: string): void {
    const max = this.settings.maxEnvelopeBytes;
    if (utf8LengthExceeds(dataJson, max)) {
      throw new Error(
        `[WebSocketServerHelper] send(): the payload is larger than maxEnvelopeBytes (${max} bytes); nothing was sent`,
      );
    }
  }

  private assertRoomName(room: string): void {
    if (!isValidRoomName(room)) {
      throw new Error(
        `[WebSocketServerHelper] Invalid room name ${JSON.stringify(room)}: non-empty, at most 256 characters, not starting with "ws:"`,
      );
    }
  }
}

/** `exclude` of `send()`: undefined when empty; anything but an array of strings is a programming error. */
function readExclude(exclude: unknown): string[] | undefined {
  if (exclude === undefined) return undefined;
  if (!Array.isArray(exclude) || !exclude.every((id) => typeof id === 'string')) {
    throw new Error('[WebSocketServerHelper] send(): exclude must be an array of client ids');
  }
  return exclude.length > 0 ? exclude : undefined;
}
