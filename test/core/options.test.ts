import { describe, expect, test } from 'bun:test';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import {
  DEFAULT_SERVER_OPTIONS,
  mergeServerOptions,
  unknownServerOptionKeys,
} from '../../src/core/websocket/options.ts';

describe('WebSocketBindingKeys', () => {
  test('the thirteen keys carry exactly the documented strings', () => {
    expect(Object.fromEntries(Object.entries(WebSocketBindingKeys))).toEqual({
      SERVER_OPTIONS: '@app/websocket/server-options',
      REDIS_CONNECTION: '@app/websocket/redis-connection',
      AUTHENTICATE_HANDLER: '@app/websocket/authenticate-handler',
      VALIDATE_ROOM_HANDLER: '@app/websocket/validate-room-handler',
      CLIENT_CONNECTED_HANDLER: '@app/websocket/client-connected-handler',
      CLIENT_DISCONNECTED_HANDLER: '@app/websocket/client-disconnected-handler',
      MESSAGE_HANDLER: '@app/websocket/message-handler',
      OUTBOUND_TRANSFORMER: '@app/websocket/outbound-transformer',
      HANDSHAKE_HANDLER: '@app/websocket/handshake-handler',
      HISTORY_HANDLER: '@app/websocket/history-handler',
      PRESENCE_HANDLER: '@app/websocket/presence-handler',
      PRESENCE_INFO_HANDLER: '@app/websocket/presence-info-handler',
      WEBSOCKET_INSTANCE: '@app/websocket/instance',
    });
  });
});

describe('server options', () => {
  test('defaults are the documented ones', () => {
    expect(DEFAULT_SERVER_OPTIONS).toEqual({
      identifier: 'WEBSOCKET_SERVER',
      path: '/ws',
      defaultRooms: ['ws-default', 'ws-notification'],
      heartbeatInterval: 30_000,
      heartbeatTimeout: 90_000,
      requireEncryption: false,
      limits: {},
      allowedOrigins: 'same-origin',
      livenessPath: '/livez',
      readinessPath: '/readyz',
      drainWindow: 0,
      metrics: false,
      metricsPath: '/metrics',
      adminUi: false,
      connectionRate: {},
      clientCaps: false,
      serverOptions: { sendPings: true, idleTimeout: 60, maxPayloadLength: 131_072 },
    });
    expect(mergeServerOptions(undefined)).toEqual(DEFAULT_SERVER_OPTIONS);
  });

  test('bound values win; serverOptions is merged key by key', () => {
    const merged = mergeServerOptions({
      identifier: 'mine',
      path: '/realtime',
      defaultRooms: ['general'],
      serverOptions: { maxPayloadLength: 2_097_152, backpressureLimit: 2_097_152 },
      limits: false,
    });
    expect(merged).toEqual({
      identifier: 'mine',
      path: '/realtime',
      defaultRooms: ['general'],
      heartbeatInterval: 30_000,
      heartbeatTimeout: 90_000,
      requireEncryption: false,
      limits: false,
      allowedOrigins: 'same-origin',
      livenessPath: '/livez',
      readinessPath: '/readyz',
      drainWindow: 0,
      metrics: false,
      metricsPath: '/metrics',
      adminUi: false,
      connectionRate: {},
      clientCaps: false,
      serverOptions: {
        sendPings: true,
        idleTimeout: 60,
        maxPayloadLength: 2_097_152,
        backpressureLimit: 2_097_152,
      },
    });
  });

  test('undefined never overrides a default, and merging never mutates the defaults', () => {
    const merged = mergeServerOptions({ path: undefined, serverOptions: { idleTimeout: undefined } });
    expect(merged.path).toBe('/ws');
    expect(merged.serverOptions.idleTimeout).toBe(60);
    merged.defaultRooms.push('extra');
    merged.serverOptions.sendPings = false;
    expect(DEFAULT_SERVER_OPTIONS.defaultRooms).toEqual(['ws-default', 'ws-notification']);
    expect(DEFAULT_SERVER_OPTIONS.serverOptions.sendPings).toBe(true);
  });

  test('helper options are known to the component; only unknown keys are reported', () => {
    expect(
      unknownServerOptionKeys({ path: '/x', authTimeout: 1, encryptedBatchLimit: 2, authTimout: 3 }),
    ).toEqual(['authTimout']);
    expect(unknownServerOptionKeys(undefined)).toEqual([]);
    expect(mergeServerOptions({ authTimout: 1 } as object)).toEqual(DEFAULT_SERVER_OPTIONS);
    // A helper option is passed on only when given: absent, the helper keeps its default.
    expect(mergeServerOptions({ authTimeout: 1 })).toEqual({ ...DEFAULT_SERVER_OPTIONS, authTimeout: 1 });
  });
});
