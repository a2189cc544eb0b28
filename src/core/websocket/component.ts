import { type IAdminMount, mountAdminUi } from '../../admin-ui/mount.ts';
import { type IResolvedAdminUiOptions, resolveAdminUiOptions } from '../../admin-ui/options.ts';
import { WebSocketCloseCodes } from '../../common/constants.ts';
import { adaptLogger, logFields } from '../../common/log.ts';
import { assertBunRuntime } from '../../common/runtime.ts';
import type {
  IBunWebSocketHandler,
  IRedisConnection,
  TWebSocketAuthenticateFn,
  TWebSocketClientConnectedFn,
  TWebSocketClientDisconnectedFn,
  TWebSocketHandshakeFn,
  TWebSocketMessageHandler,
  TWebSocketOutboundTransformer,
  TWebSocketValidateRoomFn,
} from '../../common/types.ts';
import type { THistoryFn } from '../../history/types.ts';
import type { TPresenceFn, TPresenceInfoFn } from '../../presence/types.ts';
import { ConnectionRateLimiter, connectionRateRefusedResponse } from '../../server/connection-rate.ts';
import type { IWebSocketServerOptions } from '../../server/options.ts';
import { createOriginCheck, type TOriginCheck } from '../../server/origin-policy.ts';
import { WebSocketServerHelper } from '../../server/websocket-server-helper.ts';
import type { BaseApplication } from '../application.ts';
import type { IComponent, IComponentStartContext } from '../component.ts';
import { ClientCaps } from './client-caps.ts';
import { createWebSocketFetchHandler, type TAdmit } from './fetch-handler.ts';
import { createHealthResponder } from './health.ts';
import { WebSocketBindingKeys } from './keys.ts';
import { createMetricsResponder } from './metrics-endpoint.ts';
import {
  type IServerOptions,
  mergeServerOptions,
  type TResolvedServerOptions,
  unknownServerOptionKeys,
} from './options.ts';

const PREFIX = '[WebSocketComponent]';

/**
 * Mounts a `WebSocketServerHelper` on the application's Bun server. It reads
 * its configuration from `WebSocketBindingKeys`, checks it before the server
 * listens, builds and configures the helper once the server is up, routes
 * upgrade requests on its path to the helper (everything else stays with
 * Hono), and binds the helper to `WEBSOCKET_INSTANCE` for services to use.
 */
export class WebSocketComponent implements IComponent {
  private options?: TResolvedServerOptions;
  private helper?: WebSocketServerHelper;
  private originAllowed?: TOriginCheck;
  private connectionRate?: ConnectionRateLimiter;
  private caps?: ClientCaps;
  private adminUi?: IResolvedAdminUiOptions;
  private admin?: IAdminMount;

  constructor(private readonly application: BaseApplication) {
    // Fail at registration, not at the first connection: the helper needs Bun's native WebSockets.
    assertBunRuntime('WebSocketComponent');
  }

  configure(): void {
    const app = this.application;
    const authenticate = app.get<unknown>({
      key: WebSocketBindingKeys.AUTHENTICATE_HANDLER,
      isOptional: true,
    });
    if (typeof authenticate !== 'function') {
      throw new Error(
        `${PREFIX} No authenticate handler: bind a TWebSocketAuthenticateFn to WebSocketBindingKeys.AUTHENTICATE_HANDLER ("${WebSocketBindingKeys.AUTHENTICATE_HANDLER}")`,
      );
    }

    const bound = app.get<Partial<IServerOptions>>({
      key: WebSocketBindingKeys.SERVER_OPTIONS,
      isOptional: true,
    });
    if (bound !== undefined && (typeof bound !== 'object' || bound === null || Array.isArray(bound))) {
      throw new Error(`${PREFIX} the value bound to SERVER_OPTIONS must be an object of server options`);
    }
    const ignored = unknownServerOptionKeys(bound);
    if (ignored.length > 0) {
      adaptLogger(app.logger).warn(
        `${PREFIX} ignoring unknown server option(s): ${ignored.join(', ')}`,
        logFields({ options: ignored }),
      );
    }
    this.options = mergeServerOptions(bound);
    try {
      this.originAllowed = createOriginCheck(this.options.allowedOrigins);
    } catch (error) {
      throw new Error(`${PREFIX} ${(error as Error).message}`);
    }
    checkOperationalOptions(this.options);
    const { path, livenessPath, readinessPath, metricsPath } = this.options;
    this.adminUi = resolveAdminUiOptions(this.options.adminUi, [
      path,
      livenessPath,
      readinessPath,
      metricsPath,
    ]);
    if (this.adminUi && !app.isBound({ key: WebSocketBindingKeys.REDIS_CONNECTION })) {
      throw new Error(
        `${PREFIX} adminUi needs Redis (its API reads the fleet registry, presence and history there): bind WebSocketBindingKeys.REDIS_CONNECTION`,
      );
    }
    if (this.adminUi && !this.options.fleet) {
      adaptLogger(app.logger).warn(
        `${PREFIX} adminUi is on but fleet is off: this instance does not announce itself in the fleet the admin UI lists (set fleet: true on every instance)`,
      );
    }
    const rate = this.options.connectionRate;
    this.connectionRate = rate === false ? undefined : new ConnectionRateLimiter(rate, PREFIX);
    const caps = this.options.clientCaps === false ? undefined : new ClientCaps(this.options.clientCaps);
    this.caps = caps?.enabled ? caps : undefined;

    if (this.options.requireEncryption && !app.isBound({ key: WebSocketBindingKeys.HANDSHAKE_HANDLER })) {
      adaptLogger(app.logger).warn(
        `${PREFIX} requireEncryption is on but nothing is bound to WebSocketBindingKeys.HANDSHAKE_HANDLER ("${WebSocketBindingKeys.HANDSHAKE_HANDLER}"): every client will be closed with 4004 after authenticating`,
      );
    }
  }

  async start({ server, hono }: IComponentStartContext): Promise<void> {
    const app = this.application;
    if (!this.options) this.configure(); // started by hand, without the application's configure step
    // These are the component's own: the helper never sees an HTTP request or the stop.
    const {
      allowedOrigins,
      livenessPath,
      readinessPath,
      drainWindow,
      metricsPath,
      connectionRate,
      clientIpFn,
      connectionRateFn,
      clientCaps: _caps,
      adminUi: _adminUi,
      ...options
    } = this.options as TResolvedServerOptions;
    const optional = <T>(key: string): T | undefined => app.get<T>({ key, isOptional: true });

    const helperOptions: IWebSocketServerOptions = {
      ...options,
      allowedOrigins,
      server,
      authenticateFn: app.get<TWebSocketAuthenticateFn>({ key: WebSocketBindingKeys.AUTHENTICATE_HANDLER }),
      validateRoomFn: optional<TWebSocketValidateRoomFn>(WebSocketBindingKeys.VALIDATE_ROOM_HANDLER),
      clientConnectedFn: optional<TWebSocketClientConnectedFn>(WebSocketBindingKeys.CLIENT_CONNECTED_HANDLER),
      clientDisconnectedFn: optional<TWebSocketClientDisconnectedFn>(
        WebSocketBindingKeys.CLIENT_DISCONNECTED_HANDLER,
      ),
      messageHandler: optional<TWebSocketMessageHandler>(WebSocketBindingKeys.MESSAGE_HANDLER),
      outboundTransformer: optional<TWebSocketOutboundTransformer>(WebSocketBindingKeys.OUTBOUND_TRANSFORMER),
      handshakeFn: optional<TWebSocketHandshakeFn>(WebSocketBindingKeys.HANDSHAKE_HANDLER),
      historyFn: optional<THistoryFn>(WebSocketBindingKeys.HISTORY_HANDLER),
      presenceFn: optional<TPresenceFn>(WebSocketBindingKeys.PRESENCE_HANDLER),
      presenceInfoFn: optional<TPresenceInfoFn>(WebSocketBindingKeys.PRESENCE_INFO_HANDLER),
      logger: app.logger,
    };
    // The helper tells "not given" (single-instance mode, which it logs) from "given but
    // invalid" (it throws), so the key is passed only when something is bound.
    if (app.isBound({ key: WebSocketBindingKeys.REDIS_CONNECTION })) {
      helperOptions.redisConnection = app.get<IRedisConnection>({
        key: WebSocketBindingKeys.REDIS_CONNECTION,
      });
    }

    const helper = this.createHelper(helperOptions);
    const log = adaptLogger(app.logger, { structured: options.structuredLogs });
    this.helper = helper;
    await helper.configure();
    const { caps } = this;
    if (caps?.countsRooms) helper.setRoomQuota(caps);
    const admin = this.adminUi
      ? (await this.mountAdmin(this.adminUi, helper, helperOptions, clientIpFn)).handle
      : undefined;

    server.reload({
      fetch: createWebSocketFetchHandler({
        path: helper.getPath(),
        fallback: (request, srv) => hono.fetch(request, srv),
        originAllowed: this.originAllowed,
        onRefused: (request, reason) => {
          helper.countRefusedUpgrade(reason);
          if (reason === 'origin') {
            const origin = request.headers.get('origin');
            log.debug(`${PREFIX} refused an upgrade from origin ${origin}`, logFields({ origin }));
          }
        },
        health: createHealthResponder({
          livenessPath,
          readinessPath,
          readiness: () => helper.getReadiness(),
        }),
        metrics:
          options.metrics && metricsPath !== false
            ? createMetricsResponder({ path: metricsPath, metrics: () => helper.getMetrics() })
            : undefined,
        admin,
        accepting: () => !helper.isStopping(),
        admit: this.admission(helper, clientIpFn, connectionRateFn),
        clientAddress: (request, srv) => {
          try {
            return clientIpFn ? clientIpFn({ request, server: srv }) : srv.requestIP(request)?.address;
          } catch {
            return undefined; // an address is a courtesy to authenticateFn, not a condition
          }
        },
      }),
      websocket: caps ? this.cappedHandler(caps) : helper.getBunWebSocketHandler(),
    });
    app.bind<WebSocketServerHelper>({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE }).toValue(helper);
    log.info(
      `${PREFIX} "${options.identifier}" accepting WebSocket connections on ${options.path}`,
      logFields({ identifier: options.identifier, path: options.path }),
    );
  }

  /** The admin UI with its own HTTP API, behind its gate (see src/admin-ui/). */
  private async mountAdmin(
    options: IResolvedAdminUiOptions,
    helper: WebSocketServerHelper,
    helperOptions: IWebSocketServerOptions,
    clientIpFn: TResolvedServerOptions['clientIpFn'],
  ): Promise<IAdminMount> {
    const server = this.application.getServer();
    this.admin = await mountAdminUi({
      options,
      redisConnection: helperOptions.redisConnection as IRedisConnection,
      connections: (target) => helper.connections(target),
      historyFn: helperOptions.historyFn,
      busSecret: helperOptions.busSecret,
      maxEnvelopeBytes: helperOptions.maxEnvelopeBytes,
      logger: this.application.logger,
      clientAddress: (request) => {
        try {
          return clientIpFn ? clientIpFn({ request, server }) : server.requestIP(request)?.address;
        } catch {
          return undefined;
        }
      },
    });
    return this.admin;
  }

  /** Builds the helper from the options gathered in `start()`; a subclass may wrap or observe it. */
  protected createHelper(options: IWebSocketServerOptions): WebSocketServerHelper {
    return new WebSocketServerHelper(options);
  }

  /**
   * The per-IP admission of upgrades: the built-in bucket, then the application's hook.
   * Undefined when both are off, so the upgrade path does no work for it.
   */
  private admission(
    helper: WebSocketServerHelper,
    clientIpFn: TResolvedServerOptions['clientIpFn'],
    connectionRateFn: TResolvedServerOptions['connectionRateFn'],
  ): TAdmit | undefined {
    const limiter = this.connectionRate;
    const caps = this.caps;
    if (!limiter && !connectionRateFn && !caps) return undefined;
    const logger = adaptLogger(this.application.logger);
    const refuse = (ip: string) => {
      helper.countRefusedUpgrade('rate');
      logger.debug(`${PREFIX} refused an upgrade from ${ip}: connection rate`, logFields({ ip }));
      return connectionRateRefusedResponse();
    };
    const failed = (ip: string | undefined, error: unknown) => {
      logger.error(
        `${PREFIX} clientIpFn or connectionRateFn failed; upgrade refused`,
        logFields({ ip, error }),
      );
      return new Response('Internal Server Error', { status: 500 });
    };
    // With caps on, an admitted upgrade carries its address (the socket is counted under it).
    const admitted = (ip: string): true | string | Response => {
      if (!caps) return true;
      if (caps.countsConnections && !caps.admitUpgrade(ip)) {
        helper.countRefusedUpgrade('address');
        logger.debug(`${PREFIX} refused an upgrade from ${ip}: connections per address`, logFields({ ip }));
        return new Response('Too Many Requests: too many connections from this address', {
          status: 429,
          headers: { 'retry-after': '1' },
        });
      }
      return ip;
    };
    return (request, server) => {
      let ip: string | undefined;
      try {
        ip = (clientIpFn ? clientIpFn({ request, server }) : server.requestIP(request)?.address) ?? 'unknown';
        if (limiter && !limiter.allow(ip)) return refuse(ip);
        if (!connectionRateFn) return admitted(ip);
        const known = ip;
        const verdict = connectionRateFn({ ip, request });
        if (typeof verdict === 'boolean') return verdict ? admitted(ip) : refuse(ip);
        return Promise.resolve(verdict).then(
          (allowed) => (allowed === true ? admitted(known) : refuse(known)),
          (error: unknown) => failed(known, error),
        );
      } catch (error) {
        return failed(ip, error);
      }
    };
  }

  /**
   * The helper's Bun handler with the per-address connection count around it: a socket past
   * `maxConnectionsPerAddress` (upgrades that raced past the check) is closed with 4007 at once.
   */
  private cappedHandler(caps: ClientCaps): IBunWebSocketHandler {
    const inner = (this.helper as WebSocketServerHelper).getBunWebSocketHandler();
    return {
      ...inner,
      open: (socket) => {
        const within = caps.opened(socket);
        inner.open(socket);
        if (!within) {
          socket.close(WebSocketCloseCodes.TOO_MANY_CONNECTIONS, 'Too many connections from this address');
        }
      },
      close: (socket, code, reason) => {
        inner.close(socket, code, reason);
        caps.closed(socket);
      },
    };
  }

  /**
   * Closes every client (with 1001, or with 1012 spread over `drainWindow`) and quits the
   * helper's Redis connections. Readiness answers 503 from the first moment of a drain.
   */
  async stop(): Promise<void> {
    await this.admin?.stop();
    await this.helper?.shutdown({ drainWindow: this.options?.drainWindow ?? 0 });
  }
}

function checkOperationalOptions(options: TResolvedServerOptions): void {
  for (const name of ['livenessPath', 'readinessPath'] as const) {
    const value = options[name];
    if (value !== false && (typeof value !== 'string' || !value.startsWith('/') || value === options.path)) {
      throw new Error(
        `${PREFIX} ${name} must be false or a path starting with "/" other than the WebSocket path, got ${JSON.stringify(value)}`,
      );
    }
  }
  const { metricsPath } = options;
  if (
    metricsPath !== false &&
    (typeof metricsPath !== 'string' ||
      !metricsPath.startsWith('/') ||
      metricsPath === options.path ||
      metricsPath === options.livenessPath ||
      metricsPath === options.readinessPath)
  ) {
    throw new Error(
      `${PREFIX} metricsPath must be false or a path starting with "/" other than the WebSocket and health paths, got ${JSON.stringify(metricsPath)}`,
    );
  }
  for (const name of ['clientIpFn', 'connectionRateFn'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new Error(`${PREFIX} ${name} must be a function, got ${typeof options[name]}`);
    }
  }
  const window = options.drainWindow;
  if (typeof window !== 'number' || !Number.isFinite(window) || window < 0) {
    throw new Error(
      `${PREFIX} drainWindow must be a number of milliseconds >= 0, got ${JSON.stringify(window)}`,
    );
  }
}
