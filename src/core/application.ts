import type { Server } from 'bun';
import { Hono } from 'hono';
import { adaptLogger, logFields } from '../common/log.ts';
import { createConsoleLogger } from '../common/logger.ts';
import type { ILogger, ValueOrPromise } from '../common/types.ts';
import type { WebSocketServerHelper } from '../server/websocket-server-helper.ts';
import type { IComponent } from './component.ts';
import { type Binding, Container } from './container.ts';
import { installShutdownSignals } from './signals.ts';
import type { IServerOptions } from './websocket/options.ts';

/**
 * The types of some keys the package reads or binds, so that `app.get({ key })` and
 * `app.bind({ key }).toValue(…)` of one of them are typed without a type argument.
 * Other keys take `get<T>()` / `bind<T>()`.
 */
export interface IBindingTypes {
  /** WebSocketBindingKeys.WEBSOCKET_INSTANCE */
  '@app/websocket/instance': WebSocketServerHelper;
  /** WebSocketBindingKeys.SERVER_OPTIONS */
  '@app/websocket/server-options': Partial<IServerOptions>;
}

export interface IApplicationOptions {
  /** Used in log lines. Default `'application'`. */
  name?: string;
  /** Default: `PORT` from the environment, else 3000. `0` lets the OS pick a free port. */
  port?: number;
  /** Default: `HOST` from the environment, else `127.0.0.1` (loopback only). */
  host?: string;
  logger?: ILogger;
  /** Upper bound on a graceful `stop()` before remaining connections are cut. Default 10 000 ms. */
  shutdownTimeout?: number;
  /** Stop gracefully and exit on SIGINT / SIGTERM. Default `true`. */
  handleSignals?: boolean;
}

export interface IApplicationAddress {
  hostname: string;
  port: number;
  /** `http://hostname:port` */
  url: string;
}

type TState = 'idle' | 'configuring' | 'starting' | 'running' | 'stopped';

const DEFAULT_PORT = 3000;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_SHUTDOWN_TIMEOUT = 10_000;

/** A component's class: the application constructs it with itself (`application.component(Class)`). */
export type TComponentClass<C extends IComponent = IComponent> = new (application: BaseApplication) => C;

/**
 * The application base: a binding container, a Hono router for HTTP routes, a
 * list of components, and the Bun server that serves them. Subclasses bind
 * their configuration and register components in `preConfigure()`.
 */
export class BaseApplication {
  /** HTTP routes: add them with the usual Hono calls (`this.hono.get(...)`). */
  readonly hono = new Hono();
  readonly logger: ILogger;
  readonly name: string;

  private readonly container = new Container();
  private readonly components: IComponent[] = [];
  private readonly options: IApplicationOptions;
  private state: TState = 'idle';
  private server?: Server<unknown>;
  private stopping?: Promise<void>;
  private removeSignalListeners?: () => void;

  constructor(options: IApplicationOptions = {}) {
    this.options = options;
    this.name = options.name ?? 'application';
    this.logger = options.logger ?? createConsoleLogger(this.name);
  }

  // ------------------------------------------------------------------ bindings

  bind<K extends keyof IBindingTypes>(opts: { key: K }): Binding<IBindingTypes[K]>;
  bind<T>(opts: { key: string }): Binding<T>;
  bind<T>(opts: { key: string }): Binding<T> {
    return this.container.bind<T>(opts);
  }

  get<K extends keyof IBindingTypes>(opts: { key: K; isOptional?: false }): IBindingTypes[K];
  get<K extends keyof IBindingTypes>(opts: { key: K; isOptional: true }): IBindingTypes[K] | undefined;
  get<T>(opts: { key: string; isOptional?: false }): T;
  get<T>(opts: { key: string; isOptional: true }): T | undefined;
  get<T>(opts: { key: string; isOptional?: boolean }): T | undefined {
    return opts.isOptional
      ? this.container.get<T>({ key: opts.key, isOptional: true })
      : this.container.get<T>({ key: opts.key });
  }

  isBound(opts: { key: string }): boolean {
    return this.container.isBound(opts);
  }

  unbind(opts: { key: string }): boolean {
    return this.container.unbind(opts);
  }

  // ---------------------------------------------------------------- components

  /** Registers a component. It reads its bindings when the application starts, so order does not matter. */
  component<C extends IComponent>(ComponentClass: TComponentClass<C>): C {
    if (this.state !== 'idle' && this.state !== 'configuring') {
      throw new Error(`[${this.name}] register components before start() or in preConfigure()`);
    }
    const instance = new ComponentClass(this);
    this.components.push(instance);
    return instance;
  }

  /** Override to bind values, add routes and register components. Runs at the beginning of `start()`. */
  preConfigure(): ValueOrPromise<void> {}

  // ----------------------------------------------------------------- lifecycle

  /** The running Bun server. Throws before `start()`. */
  getServer(): Server<unknown> {
    if (!this.server) throw new Error(`[${this.name}] the server is not running: call start() first`);
    return this.server;
  }

  getAddress(): IApplicationAddress {
    const server = this.getServer();
    const hostname = server.hostname ?? DEFAULT_HOST;
    const port = server.port ?? 0;
    const host = hostname.includes(':') ? `[${hostname}]` : hostname; // IPv6 literals need brackets
    return { hostname, port, url: `http://${host}:${port}` };
  }

  /**
   * Runs `preConfigure()`, lets every component check its configuration, starts
   * `Bun.serve` and then starts the components. If any step fails, what was
   * started is stopped again and the error is rethrown.
   */
  async start(): Promise<IApplicationAddress> {
    if (this.state !== 'idle') throw new Error(`[${this.name}] start() can only be called once`);
    this.state = 'configuring';
    try {
      await this.preConfigure();
      this.state = 'starting';
      for (const component of this.components) await component.configure?.();

      this.server = Bun.serve({
        hostname: this.options.host ?? process.env.HOST ?? DEFAULT_HOST,
        port: resolvePort(this.options.port),
        fetch: (request, server) => this.hono.fetch(request, server),
        // Bun wants a WebSocket handler from the start for a later reload() to add one;
        // until a component installs its own, nothing is ever upgraded.
        websocket: { message: () => {} },
      });
      for (const component of this.components) {
        await component.start?.({ server: this.server, hono: this.hono });
      }
    } catch (error) {
      await this.stop().catch((stopError: unknown) =>
        adaptLogger(this.logger).error(
          'Cleaning up after a failed start also failed',
          logFields({ error: stopError }),
        ),
      );
      throw error;
    }

    this.state = 'running';
    if (this.options.handleSignals ?? true) {
      this.removeSignalListeners = installShutdownSignals({ stop: () => this.stop(), logger: this.logger });
    }
    const address = this.getAddress();
    adaptLogger(this.logger).info(`listening on ${address.url}`, logFields({ url: address.url }));
    return address;
  }

  /**
   * Graceful stop: components stop in reverse order (the WebSocket component
   * closes its clients with 1001 and quits Redis), then the server drains. After
   * `shutdownTimeout` whatever is still open is cut. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.removeSignalListeners?.();
      const bound = this.options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT;
      const finished = await withinBound(this.shutdown(), bound);
      if (!finished) {
        adaptLogger(this.logger).warn(
          `Graceful stop took longer than ${bound}ms: closing the remaining connections`,
          logFields({ bound }),
        );
        await this.server?.stop(true);
      }
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const component of [...this.components].reverse()) {
      try {
        await component.stop?.();
      } catch (error) {
        // One failing component must not keep the others (or the server) running.
        adaptLogger(this.logger).error(
          `${component.constructor.name}.stop() failed`,
          logFields({ component: component.constructor.name, error }),
        );
      }
    }
    // Without `true`, Bun stops listening and resolves once the open connections are gone.
    await this.server?.stop();
  }
}

function resolvePort(explicit: number | undefined): number {
  const raw = explicit ?? process.env.PORT ?? DEFAULT_PORT;
  const port = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`[BaseApplication] port must be an integer from 0 to 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/** True when `work` settled within `ms`; its rejection is rethrown. */
async function withinBound(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
