import type { IRedisConnection } from '../../common/types.ts';
import type { THistoryFn } from '../../history/types.ts';
import { createHttpApi, type IHttpApi, type IHttpApiOptions } from '../../http-api/app.ts';
import { errorBody, HttpApiError } from '../../http-api/errors.ts';
import type { BaseApplication } from '../application.ts';
import type { IComponent } from '../component.ts';
import { WebSocketBindingKeys } from '../websocket/keys.ts';
import type { IServerOptions } from '../websocket/options.ts';

/** Binding keys the HTTP API component reads. */
export class HttpApiBindingKeys {
  /** `IHttpApiComponentOptions`. Required (the keys are). */
  static readonly OPTIONS = '@app/http-api/options';
  /** The running `IHttpApi`; bound by the component once it is configured. */
  static readonly INSTANCE = '@app/http-api/instance';
}

/**
 * What an application binds to `HttpApiBindingKeys.OPTIONS`. Redis, `historyFn`, `busSecret` and
 * `maxEnvelopeBytes` are taken from the WebSocket component's bindings, so the API and the
 * servers agree on them.
 */
export interface IHttpApiComponentOptions
  extends Omit<
    IHttpApiOptions,
    'redisConnection' | 'historyFn' | 'busSecret' | 'maxEnvelopeBytes' | 'basePath' | 'logger'
  > {
  /** Where the routes are mounted. Default `/api`. */
  path?: string;
}

const PREFIX = '[HttpApiComponent]';

/**
 * Mounts the HTTP server API on the application's Hono router (at `path`, before the server
 * listens), connects its Redis when the application starts and closes it on stop. Needs
 * `WebSocketBindingKeys.REDIS_CONNECTION`: the API reaches the fleet through Redis only.
 */
export class HttpApiComponent implements IComponent {
  private api?: IHttpApi;

  constructor(private readonly application: BaseApplication) {}

  configure(): void {
    const app = this.application;
    if (this.api) return;
    const options = app.get<IHttpApiComponentOptions>({ key: HttpApiBindingKeys.OPTIONS, isOptional: true });
    if (!options || typeof options !== 'object') {
      throw new Error(`${PREFIX} bind the API's options (at least its keys) to HttpApiBindingKeys.OPTIONS`);
    }
    const redisConnection = app.get<IRedisConnection>({
      key: WebSocketBindingKeys.REDIS_CONNECTION,
      isOptional: true,
    });
    if (!redisConnection) {
      throw new Error(`${PREFIX} the HTTP API needs Redis: bind it to WebSocketBindingKeys.REDIS_CONNECTION`);
    }
    const server = app.get<Partial<IServerOptions>>({
      key: WebSocketBindingKeys.SERVER_OPTIONS,
      isOptional: true,
    });
    const { path = '/api', ...rest } = options;
    if (typeof path !== 'string' || !path.startsWith('/') || path === '/') {
      throw new Error(`${PREFIX} path must start with "/" and not be "/" alone, got ${JSON.stringify(path)}`);
    }
    const api = createHttpApi({
      ...rest,
      redisConnection,
      historyFn: app.get<THistoryFn>({ key: WebSocketBindingKeys.HISTORY_HANDLER, isOptional: true }),
      busSecret: server?.busSecret,
      maxEnvelopeBytes: server?.maxEnvelopeBytes,
      basePath: path,
      logger: app.logger,
      // GET /connections asks every instance through this instance's helper, once it runs.
      connections: (target) => {
        const helper = app.get({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE, isOptional: true });
        if (!helper) throw new HttpApiError('NOT_AVAILABLE', 'the WebSocket component is not running here');
        return helper.connections(target);
      },
    });
    app.hono.route(path, api.app);
    // The API's own NOT_FOUND for its paths (a mounted app's notFound is the application's).
    app.hono.all(`${path}/*`, (c) =>
      c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404),
    );
    app.bind<IHttpApi>({ key: HttpApiBindingKeys.INSTANCE }).toValue(api);
    this.api = api;
  }

  async start(): Promise<void> {
    if (!this.api) this.configure();
    await this.api!.start();
  }

  async stop(): Promise<void> {
    await this.api?.stop();
  }
}
