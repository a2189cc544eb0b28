import { describe, expect, test } from 'bun:test';
import {
  WebSocketChannels,
  WebSocketClientStates,
  WebSocketDefaults,
  WebSocketEvents,
  WebSocketMessageTypes,
} from '../../src/index.ts';

describe('WebSocketEvents', () => {
  test('holds the eight system events', () => {
    expect([...WebSocketEvents.SCHEME_SET].sort()).toEqual(
      ['authenticate', 'connected', 'disconnect', 'encrypted', 'error', 'heartbeat', 'join', 'leave'].sort(),
    );
    expect(WebSocketEvents.ENCRYPTED).toBe('encrypted');
    expect(WebSocketEvents.AUTHENTICATE).toBe('authenticate');
  });

  test('isValid accepts system events only', () => {
    expect(WebSocketEvents.isValid('authenticate')).toBe(true);
    expect(WebSocketEvents.isValid('encrypted')).toBe(true);
    expect(WebSocketEvents.isValid('invalid')).toBe(false);
    expect(WebSocketEvents.isValid(42)).toBe(false);
  });
});

describe('WebSocketChannels', () => {
  test('prefixes and builders', () => {
    expect(WebSocketChannels.BROADCAST).toBe('ws:broadcast');
    expect(WebSocketChannels.forRoom({ room: 'lobby' })).toBe('ws:room:lobby');
    expect(WebSocketChannels.forClient({ clientId: 'c1' })).toBe('ws:client:c1');
    expect(WebSocketChannels.forUser({ userId: 'u1' })).toBe('ws:user:u1');
    expect(WebSocketChannels.forRoomPattern()).toBe('ws:room:*');
    expect(WebSocketChannels.forClientPattern()).toBe('ws:client:*');
    expect(WebSocketChannels.forUserPattern()).toBe('ws:user:*');
  });
});

describe('WebSocketDefaults', () => {
  test('every documented value', () => {
    expect(WebSocketDefaults.PATH).toBe('/ws');
    expect(WebSocketDefaults.ROOM).toBe('ws-default');
    expect(WebSocketDefaults.NOTIFICATION_ROOM).toBe('ws-notification');
    expect(WebSocketDefaults.BROADCAST_TOPIC).toBe('ws:internal:broadcast');
    expect(WebSocketDefaults.MAX_PAYLOAD_LENGTH).toBe(131072);
    expect(WebSocketDefaults.IDLE_TIMEOUT).toBe(60);
    expect(WebSocketDefaults.BACKPRESSURE_LIMIT).toBe(1048576);
    expect(WebSocketDefaults.SEND_PINGS).toBe(true);
    expect(WebSocketDefaults.PUBLISH_TO_SELF).toBe(false);
    expect(WebSocketDefaults.AUTH_TIMEOUT).toBe(5000);
    expect(WebSocketDefaults.HEARTBEAT_INTERVAL).toBe(30000);
    expect(WebSocketDefaults.HEARTBEAT_TIMEOUT).toBe(90000);
    expect(WebSocketDefaults.ENCRYPTED_BATCH_LIMIT).toBe(10);
  });
});

describe('message types and client states', () => {
  test('WebSocketMessageTypes', () => {
    expect([...WebSocketMessageTypes.SCHEME_SET]).toEqual(['client', 'user', 'room', 'broadcast']);
    expect(WebSocketMessageTypes.isValid('room')).toBe(true);
    expect(WebSocketMessageTypes.isValid('rooms')).toBe(false);
  });

  test('WebSocketClientStates', () => {
    expect([...WebSocketClientStates.SCHEME_SET]).toEqual([
      'unauthorized',
      'authenticating',
      'authenticated',
      'disconnected',
    ]);
    expect(WebSocketClientStates.isValid('authenticated')).toBe(true);
    expect(WebSocketClientStates.isValid('connected')).toBe(false);
  });
});
