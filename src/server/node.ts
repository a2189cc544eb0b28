// The composition root of a server instance: builds the parts of a WebSocketServerHelper and
// wires them together, once, at construction. Nothing here runs per message: each part is
// handed the others it calls directly, and the facade keeps direct references to the parts.

import { type ICrossInstanceBus, LocalOnlyBus, RedisBus } from '../bus/cross-instance-bus.ts';
import {
  WebSocketClientStates,
  WebSocketCloseCodes,
  WebSocketDefaults,
  WebSocketMessageTypes,
} from '../common/constants.ts';
import { adaptLogger } from '../common/log.ts';
import { createConsoleLogger } from '../common/logger.ts';
import type {
  IBunServer,
  IBunWebSocketConfig,
  ILogger,
  IRedisSocketMessage,
  IWebSocketClient,
} from '../common/types.ts';
import type { FleetAnnouncer } from '../fleet/announcer.ts';
import { announceFleet } from '../fleet/wire.ts';
import { ServerCounters } from '../metrics/counters.ts';
import { PrometheusMetrics } from '../metrics/prometheus.ts';
import { MemoryPresenceStore } from '../presence/memory-store.ts';
import { RedisPresenceStore } from '../presence/redis-store.ts';
import { resolveCommandTimeout } from '../redis/command-timeout.ts';
import { attachRoomKeys, type RoomKeys } from '../room-keys/room-keys.ts';
import { encodeFrame } from '../utils/json.ts';
import { AckCollector } from './ack-answers.ts';
import { Acknowledgements } from './acknowledgements.ts';
import { AppRequests } from './app-requests.ts';
import { resolveBunConfig } from './bun-handler.ts';
import { ClientRegistry } from './client-registry.ts';
import { EventRouter } from './event-router.ts';
import { HeartbeatSweeper } from './heartbeat-sweeper.ts';
import { HistoryRequests } from './history-requests.ts';
import { announcedLimits, InboundLimiter } from './inbound-limits.ts';
import { InboundRouter } from './inbound-router.ts';
import { LocalDelivery, type TSystemReply } from './local-delivery.ts';
import {
  type IResolvedServerSettings,
  type IWebSocketServerOptions,
  resolveServerOptions,
} from './options.ts';
import { createOriginCheck, type TOriginCheck } from './origin-policy.ts';
import { RoomRecovery } from './recovery.ts';
import { RoomHistory } from './room-history.ts';
import { RoomPresence } from './room-presence.ts';
import { RoomRequests } from './room-requests.ts';
import { ServerCommands } from './server-commands.ts';
import { SessionManager } from './session-manager.ts';
import { clusterSystemRequests } from './system-requests.ts';

/** Stands in for the Bun server until one is known: with no server, no socket is subscribed to anything. */
export const UNBOUND_SERVER: IBunServer = { pendingWebSockets: 0, publish: () => 0 };

/** What the parts need from the facade that owns them. */
export interface IServerNodeHooks {
  /** Unique per instance (the facade's `serverId`). */
  serverId: string;
  /** A message from the other instances (or an emitter), with its payload's JSON when it came as such. */
  onBusMessage(message: IRedisSocketMessage, dataJson?: string): void;
  /** True once `shutdown()` was called (the metrics' draining gauge). */
  isStopping(): boolean;
}

/** Every part of one server instance, wired. */
export interface IServerNode<A extends object, M extends object> {
  settings: IResolvedServerSettings;
  logger: ILogger;
  originAllowed: TOriginCheck;
  /** The Bun WebSocket settings with the defaults filled in. */
  bunConfig: IBunWebSocketConfig;
  registry: ClientRegistry<M>;
  /** Running totals behind `getStats()` and the Prometheus metrics. */
  counters: ServerCounters;
  metrics?: PrometheusMetrics;
  delivery: LocalDelivery<M>;
  sessions: SessionManager<A, M>;
  inbound: InboundRouter<A, M>;
  events: EventRouter<M>;
  roomRequests: RoomRequests<M>;
  heartbeat: HeartbeatSweeper<M>;
  bus: ICrossInstanceBus;
  /** The bus when it is Redis (undefined in single-instance mode). */
  redisBus?: RedisBus;
  /** Only with `historyFn`: rooms without history never reach it. */
  roomHistory?: RoomHistory<M>;
  recovery?: RoomRecovery<M>;
  acks: Acknowledgements<M>;
  ackAnswers: AckCollector<M>;
  commands: ServerCommands<M>;
  /** Only with `presenceFn`. */
  roomPresence?: RoomPresence<M>;
  /** Only with `roomKeys`: sealed rooms. */
  roomKeys?: RoomKeys<M>;
  /** Only with the `fleet` option (and Redis): the instance's record in the fleet registry. */
  fleet?: FleetAnnouncer;
}

/**
 * Validates `opts` (throws on a misconfiguration) and builds the instance: registry, delivery,
 * bus, history, presence, limits, sessions, inbound routing, acknowledgements, server commands
 * and the heartbeat sweep, each given the others it needs.
 */
export function createServerNode<A extends object, M extends object>(
  opts: IWebSocketServerOptions<A, M>,
  hooks: IServerNodeHooks,
): IServerNode<A, M> {
  const settings = resolveServerOptions(opts);
  const { serverId } = hooks;
  const originAllowed = createOriginCheck(opts.allowedOrigins);
  const logger = adaptLogger(opts.logger ?? createConsoleLogger(opts.identifier), {
    structured: opts.structuredLogs,
    bindings: { identifier: opts.identifier, serverId },
  });
  const bunConfig = resolveBunConfig(opts.serverOptions);
  const registry = new ClientRegistry<M>();
  const counters = new ServerCounters();

  // Parts built further down, called through the closures below only once everything exists.
  let sessions: SessionManager<A, M>;
  let commands: ServerCommands<M>;
  let inbound: InboundRouter<A, M>;
  let recovery: RoomRecovery<M> | undefined;
  let bus: ICrossInstanceBus;

  const delivery = new LocalDelivery<M>({
    server: opts.server ?? UNBOUND_SERVER,
    registry,
    transformer: opts.outboundTransformer,
    batchLimit: settings.encryptedBatchLimit,
    publishToSelf: bunConfig.publishToSelf === true,
    logger,
    counters,
  });
  // Encrypted clients get their answers through the transformer too: nothing after the handshake is plain.
  const reply: TSystemReply<M> = (client, event, data, id) =>
    delivery.toSocket(client, encodeFrame(event, data, id), event, data, id);

  const metrics = opts.metrics
    ? new PrometheusMetrics(opts.metrics, {
        counters,
        redis: opts.redisConnection !== undefined,
        sizes: () => ({ ...registry.sizes(), authenticated: counters.authenticated }),
        bus: () => (bus instanceof RedisBus ? { ...bus.stats, connected: bus.connected } : undefined),
        draining: hooks.isStopping,
        recovering: () => recovery?.pendingRooms,
        expiring: () => sessions.refresh.size,
      })
    : undefined;

  const limiter = new InboundLimiter(
    settings.limits,
    reply,
    (client, code, reason) => sessions.close(client as IWebSocketClient<M>, code, reason),
    counters,
  );
  const redisBus = opts.redisConnection
    ? new RedisBus({
        connection: opts.redisConnection,
        serverId,
        logger,
        readyTimeout: opts.redisReadyTimeout,
        commandTimeout: resolveCommandTimeout('[WebSocketServerHelper]', opts.redisCommandTimeout),
        busSecrets: settings.busSecrets,
        maxEnvelopeBytes: settings.maxEnvelopeBytes,
        maxPublishQueueBytes: settings.maxPublishQueueBytes,
        subscriptionMode: settings.subscriptionMode,
        onMessage: hooks.onBusMessage,
        onLatency: metrics ? (ms) => metrics.observeBusLatency(ms) : undefined,
      })
    : undefined;
  bus = redisBus ?? new LocalOnlyBus();
  registry.listener = bus.membership;

  const roomHistory = opts.historyFn
    ? new RoomHistory<M>({
        historyFn: opts.historyFn,
        delivery,
        serverId,
        logger,
        redis: redisBus,
        counters,
        stampSentAt: metrics !== undefined,
      })
    : undefined;
  recovery = roomHistory
    ? new RoomRecovery<M>({
        registry,
        delivery,
        history: roomHistory,
        logger,
        reply,
        barrier: redisBus ? (rooms) => redisBus.barrier(rooms) : undefined,
        channels: bus.roomChannels,
        counters,
      })
    : undefined;

  const roomPresence = opts.presenceFn
    ? new RoomPresence<M>({
        presenceFn: opts.presenceFn,
        presenceInfoFn: opts.presenceInfoFn,
        store: redisBus
          ? new RedisPresenceStore({
              client: () => redisBus.publisher(),
              serverId,
              ttl: settings.presenceTtl,
              publish: (event) => redisBus.publishEncoded(event.channel, event.message),
            })
          : new MemoryPresenceStore(),
        encodeEvent: redisBus
          ? (topic, event, data, dataJson) =>
              redisBus.encode(
                { serverId, type: WebSocketMessageTypes.ROOM, target: topic, event, data },
                dataJson,
              )
          : undefined,
        registry,
        delivery,
        publish: (topic, event, data) =>
          bus.publish({ serverId, type: WebSocketMessageTypes.ROOM, target: topic, event, data }),
        reply,
        limiter,
        logger,
        ttl: settings.presenceTtl,
      })
    : undefined;
  if (roomPresence) registry.onMembership = roomPresence.onMembership;

  const deliverAck = (client: IWebSocketClient<M>, event: string, data: unknown, frame: string) =>
    delivery.toClient(client.id, event, data, frame);
  const ackAnswers = new AckCollector<M>({
    serverId,
    registry,
    logger,
    deliver: deliverAck,
    publish: redisBus ? (message) => commands.relayMany(message) : undefined,
    tell: (to, message) => commands.tell(to, message),
  });
  const acks = new Acknowledgements<M>({
    registry,
    deliver: deliverAck,
    relay: redisBus
      ? (clientId, event, data, ackId, timeout) => commands.relay(clientId, event, data, ackId, timeout)
      : undefined,
    answer: (from, ackId, data, tooLarge) => commands.answerAck(from, ackId, data, tooLarge),
    others: (client, ackId, data) => ackAnswers.acknowledge(client, ackId, data),
  });
  commands = new ServerCommands<M>({
    serverId,
    registry,
    close: (client, code, reason) => sessions.close(client, code, reason),
    acks,
    collector: ackAnswers,
    logger,
    bus: redisBus,
  });

  sessions = new SessionManager<A, M>({
    registry,
    logger,
    authTimeout: settings.authTimeout,
    defaultRooms: settings.defaultRooms,
    requireEncryption: settings.requireEncryption,
    tokenRefreshLead: settings.tokenRefreshLead,
    counters,
    onAuthTimed: metrics ? (ms) => metrics.observeAuth(ms) : undefined,
    authenticateFn: opts.authenticateFn,
    handshakeFn: opts.handshakeFn,
    clientConnectedFn: opts.clientConnectedFn,
    clientDisconnectedFn: opts.clientDisconnectedFn,
    reply,
    writeFrame: (client, frame) => delivery.write(client, frame),
    enableEncryption: (client) => registry.markEncrypted(client),
    subscribeBroadcast: (client) => {
      if (!client.encrypted) client.socket.subscribe(WebSocketDefaults.BROADCAST_TOPIC);
    },
    channels: bus.roomChannels,
    limits: announcedLimits(settings.limits),
  });
  const roomRequests = new RoomRequests<M>({
    registry,
    logger,
    validateRoomFn: opts.validateRoomFn,
    reply,
    limiter,
    recovery,
    channels: bus.roomChannels,
  });
  const roomKeys = opts.roomKeys
    ? attachRoomKeys(opts.roomKeys, { registry, delivery, logger, transformer: opts.outboundTransformer })
    : undefined;
  if (roomKeys) roomRequests.admits = roomKeys.admits;

  const isConnected = (client: IWebSocketClient<M>) => registry.get(client.id) === client;
  const requests = new AppRequests<M>({
    messageHandler: opts.messageHandler,
    logger,
    reply,
    limiter,
    isConnected,
  });
  // The router joins the inbound path only once a handler or a middleware is added.
  const events = new EventRouter<M>({
    requests,
    reply,
    logger,
    isConnected,
    activate: () => {
      inbound.events = events;
    },
  });
  inbound = new InboundRouter<A, M>({
    sessions,
    rooms: roomRequests,
    history: new HistoryRequests<M>({ history: roomHistory, delivery, reply }),
    systemRequests: clusterSystemRequests(acks, roomPresence, reply),
    requests,
    logger,
    messageHandler: opts.messageHandler,
    reply,
    limiter,
    counters,
    countBytes: metrics !== undefined,
  });

  const fleet = announceFleet(opts.fleet, {
    serverId: hooks.serverId,
    identifier: opts.identifier,
    registry,
    counters,
    logger,
    draining: hooks.isStopping,
    client: redisBus && (() => redisBus.publisher()),
  });
  const heartbeat = new HeartbeatSweeper<M>(
    registry,
    settings.heartbeatInterval,
    settings.heartbeatTimeout,
    (clientId, code, reason) => {
      const client = registry.get(clientId);
      if (client) sessions.close(client, code, reason);
    },
  );

  return {
    settings,
    logger,
    originAllowed,
    bunConfig,
    registry,
    counters,
    metrics,
    delivery,
    sessions,
    inbound,
    events,
    roomRequests,
    heartbeat,
    bus,
    redisBus,
    roomHistory,
    recovery,
    acks,
    ackAnswers,
    commands,
    roomPresence,
    roomKeys,
    fleet,
  };
}

/** Starts the parts in order: Redis and its channels, server commands, presence, then the heartbeat sweep. */
export async function startServerNode<A extends object, M extends object>(
  node: IServerNode<A, M>,
): Promise<void> {
  await node.bus.start();
  await node.commands.start();
  await node.roomPresence?.start();
  node.heartbeat.start();
  await node.fleet?.start();
}

/**
 * Stops every part: the sweep and the timers, closes every client with 1001 (their disconnects run
 * as usual), clears the indexes, then history, acknowledgements, presence and the bus (Redis quits).
 */
export async function stopServerNode<A extends object, M extends object>(
  node: IServerNode<A, M>,
): Promise<void> {
  const { registry, sessions, counters } = node;
  node.heartbeat.stop();
  sessions.clearAllTimers();
  const clients = [...registry.clients.values()];
  registry.clear();
  counters.authenticated = 0;
  for (const client of clients) {
    counters.countClose(WebSocketCloseCodes.GOING_AWAY);
    client.state = WebSocketClientStates.DISCONNECTED;
    sessions.close(client, WebSocketCloseCodes.GOING_AWAY, 'Server shutting down');
  }
  node.roomHistory?.stop();
  node.roomKeys?.stop();
  node.acks.stop();
  node.ackAnswers.stop();
  if (node.roomPresence) await node.roomPresence.stop(); // no extra turn when presence is off
  if (node.fleet) await node.fleet.stop();
  await node.bus.stop();
}
