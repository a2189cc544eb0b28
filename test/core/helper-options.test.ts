import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { silentLogger } from '../../src/common/logger.ts';
import type { IWebSocketServerOptions } from '../../src/common/types.ts';
import {
  BaseApplication,
  HELPER_OPTION_SOURCES,
  type IServerOptions,
  WebSocketBindingKeys,
  WebSocketComponent,
} from '../../src/core/index.ts';
import type { THelperOptionFromServerOptions } from '../../src/core/websocket/options.ts';
import { RedisHelper, type WebSocketServerHelper } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';

// The options the component handed to the helper it built, kept by a component that only observes.
const seen: IWebSocketServerOptions[] = [];
class ObservedComponent extends WebSocketComponent {
  protected override createHelper(options: IWebSocketServerOptions): WebSocketServerHelper {
    seen.push(options);
    return super.createHelper(options);
  }
}

class App extends BaseApplication {
  constructor(private readonly bindings: Record<string, unknown>) {
    super({ name: 'options-app', port: 0, host: '127.0.0.1', handleSignals: false, logger: silentLogger });
  }
  override preConfigure(): void {
    for (const [key, value] of Object.entries(this.bindings)) this.bind({ key }).toValue(value);
    this.component(ObservedComponent);
  }
}

// One value, different from the default, for every helper option taken from SERVER_OPTIONS. Typed
// by the list, so an option added there without a sample here fails the type check.
const samples: Required<Pick<IServerOptions, THelperOptionFromServerOptions>> = {
  identifier: 'options-test',
  path: '/live',
  defaultRooms: ['lobby'],
  serverOptions: { sendPings: false, idleTimeout: 30, maxPayloadLength: 65_536, backpressureLimit: 1 << 20 },
  authTimeout: 1_234,
  heartbeatInterval: 11_000,
  heartbeatTimeout: 33_000,
  encryptedBatchLimit: 3,
  requireEncryption: false,
  tokenRefreshLead: 4_321,
  metrics: { prefix: 'opts_' },
  limits: { messagesPerSecond: 7 },
  structuredLogs: true,
  redisReadyTimeout: 9_876,
  redisCommandTimeout: 1_500,
  subscriptionMode: 'rooms',
  presenceTtl: 12_345,
  fleet: { interval: 2_000, topRooms: 3 },
  busSecret: ['a-bus-secret-of-some-length', 'an-older-bus-secret'],
  maxEnvelopeBytes: 4_096,
  allowedOrigins: ['https://app.example.com'],
};

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});

describe('every helper option reaches the helper through the component', () => {
  test('the list names each option once, and each source is known', () => {
    const bindingKeys = new Set<string>(Object.values(WebSocketBindingKeys));
    for (const [option, source] of Object.entries(HELPER_OPTION_SOURCES)) {
      const known = source === 'options' || source === 'component' || bindingKeys.has(source);
      expect(`${option}: ${known}`).toBe(`${option}: true`);
    }
    expect(Object.keys(samples).sort()).toEqual(
      Object.entries(HELPER_OPTION_SOURCES)
        .filter(([, source]) => source === 'options')
        .map(([option]) => option)
        .sort(),
    );
  });

  test('SERVER_OPTIONS keys, bindings and the component-supplied values all arrive', async () => {
    const bound: Record<string, unknown> = {};
    // A distinct function per handler binding, so identity proves which one arrived where.
    for (const source of Object.values(HELPER_OPTION_SOURCES)) {
      if (source === 'options' || source === 'component') continue;
      bound[source] =
        source === WebSocketBindingKeys.REDIS_CONNECTION
          ? new RedisHelper({ name: 'ws', host: '127.0.0.1', port: redis.port, logger: silentLogger })
          : source === WebSocketBindingKeys.AUTHENTICATE_HANDLER
            ? () => ({ userId: 'u' })
            : () => undefined;
    }
    const app = new App({ ...bound, [WebSocketBindingKeys.SERVER_OPTIONS]: samples });
    seen.length = 0;
    await app.start();
    try {
      expect(seen).toHaveLength(1);
      const given = seen[0] as unknown as Record<string, unknown>;
      const missing: string[] = [];
      for (const [option, source] of Object.entries(HELPER_OPTION_SOURCES)) {
        const expected =
          source === 'options'
            ? samples[option as THelperOptionFromServerOptions]
            : source === 'component'
              ? option === 'logger'
                ? app.logger
                : app.getServer()
              : bound[source];
        const arrived =
          source === 'options' ? Bun.deepEquals(given[option], expected) : given[option] === expected;
        if (!arrived || expected === undefined) missing.push(option);
      }
      expect(missing).toEqual([]);
      // And the helper applied them: a couple of observable ones.
      expect(app.get<WebSocketServerHelper>({ key: WebSocketBindingKeys.WEBSOCKET_INSTANCE }).getPath()).toBe(
        '/live',
      );
    } finally {
      await app.stop();
    }
  });
});
