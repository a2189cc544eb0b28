import { afterEach } from 'bun:test';
import { silentLogger } from '../../src/common/logger.ts';
import type { ILogger } from '../../src/common/types.ts';
import {
  BaseApplication,
  type IApplicationOptions,
  WebSocketBindingKeys,
  WebSocketComponent,
} from '../../src/core/index.ts';
import type { WebSocketServerHelper } from '../../src/index.ts';
import { acceptOkToken } from '../support/server.ts';

/** Values to bind before the component is registered, keyed by binding key. */
export type TBindings = Partial<Record<string, unknown>>;

/**
 * An application like one a user would write: it binds the given values in
 * `preConfigure()`, adds a `/health` route and registers the WebSocket
 * component. It listens on 127.0.0.1 and a free port, and never installs signal handlers.
 */
export class TestApplication extends BaseApplication {
  constructor(
    private readonly bindings: TBindings,
    options: IApplicationOptions = {},
  ) {
    super({ name: 'test-app', port: 0, host: '127.0.0.1', handleSignals: false, ...options });
  }

  override preConfigure(): void {
    for (const [key, value] of Object.entries(this.bindings)) this.bind({ key }).toValue(value);
    this.hono.get('/health', (c) => c.json({ ok: true }));
    this.component(WebSocketComponent);
  }

  get helper(): WebSocketServerHelper {
    return this.get<WebSocketServerHelper>({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE });
  }

  wsUrl(path = '/ws'): string {
    const { port } = this.getAddress();
    return `ws://127.0.0.1:${port}${path}`;
  }
}

/** The usual bindings: `acceptOkToken` as the authenticate handler, plus `extra`. */
export function withAuth(extra: TBindings = {}): TBindings {
  return { [WebSocketBindingKeys.AUTHENTICATE_HANDLER]: acceptOkToken, ...extra };
}

/** Starts a `TestApplication`; the caller stops it. */
export async function startApp(
  bindings: TBindings,
  opts: { logger?: ILogger } & IApplicationOptions = {},
): Promise<TestApplication> {
  const app = new TestApplication(bindings, { logger: silentLogger, ...opts });
  await app.start();
  return app;
}

/**
 * `started(serverOptions)` for a test file: each call starts an application with `withAuth()` and
 * those options in `SERVER_OPTIONS`; all of them are stopped after each test.
 */
export function appsPerTest(): (serverOptions: Record<string, unknown>) => Promise<TestApplication> {
  const apps: TestApplication[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
  });
  return async (serverOptions) => {
    const app = await startApp(withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: serverOptions }));
    apps.push(app);
    return app;
  };
}
