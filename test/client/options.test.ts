import { describe, expect, test } from 'bun:test';
import { RoomcastClient } from '../../src/client/index.ts';
import { resolveClientOptions } from '../../src/client/options.ts';
import { resolveUrl } from '../../src/client/urls.ts';

const url = 'ws://127.0.0.1:1/ws';
const create = (options: object, target: unknown = url) =>
  new RoomcastClient(target as string, { autoConnect: false, ...options });

describe('options', () => {
  test('defaults', () => {
    const resolved = resolveClientOptions(url);
    expect(resolved.url.initial).toBe(url);
    expect(resolved).toMatchObject({
      heartbeatInterval: 30_000,
      reconnect: { initialDelay: 500, maxDelay: 30_000, factor: 2, jitter: 0.5, maxAttempts: Infinity },
      reconnectOnRefusal: false,
      maxQueueSize: 100,
      requestTimeout: 10_000,
      connectTimeout: 20_000,
      autoConnect: true,
    });
    expect(resolved.encryption).toBeUndefined();
    expect(resolved.WebSocket).toBe(globalThis.WebSocket as never);
    expect(resolveClientOptions(url, { reconnect: false }).reconnect).toBeUndefined();
    expect(resolveClientOptions(url, { encryption: true }).encryption).toEqual({ hkdfInfo: undefined });
  });

  test('URLs: ws/wss kept, http(s) mapped, fragments dropped, anything else refused', () => {
    expect(resolveUrl('wss://example.test/ws?x=1')).toBe('wss://example.test/ws?x=1');
    expect(resolveUrl('http://example.test/ws')).toBe('ws://example.test/ws');
    expect(resolveUrl('https://example.test/ws')).toBe('wss://example.test/ws');
    expect(resolveUrl(new URL('ws://example.test/ws#frag'))).toBe('ws://example.test/ws');
    for (const bad of ['not a url', '/ws', 'ftp://example.test/', '', 42, undefined]) {
      expect(() => resolveUrl(bad)).toThrow(/\[roomcast\] url/);
    }
  });

  test.each([
    [{ heartbeatInterval: -1 }, 'heartbeatInterval'],
    [{ heartbeatInterval: Number.NaN }, 'heartbeatInterval'],
    [{ heartbeatInterval: '5' }, 'heartbeatInterval'],
    [{ maxQueueSize: -1 }, 'maxQueueSize'],
    [{ maxQueueSize: Infinity }, 'maxQueueSize'],
    [{ requestTimeout: 0 }, 'requestTimeout'],
    [{ connectTimeout: -5 }, 'connectTimeout'],
    [{ reconnect: 'yes' }, 'reconnect'],
    [{ reconnect: { initialDelay: -1 } }, 'reconnect.initialDelay'],
    [{ reconnect: { factor: 0.5 } }, 'reconnect.factor'],
    [{ reconnect: { jitter: 1.5 } }, 'reconnect.jitter'],
    [{ reconnect: { maxAttempts: 0 } }, 'reconnect.maxAttempts'],
    [{ reconnect: { initialDelay: 1_000, maxDelay: 10 } }, 'reconnect.maxDelay'],
    [{ encryption: 'on' }, 'encryption'],
    [{ encryption: { hkdfInfo: '' } }, 'encryption.hkdfInfo'],
    [{ auth: 'token' }, 'auth'],
    [{ auth: [1] }, 'auth'],
    [{ WebSocket: 5 }, 'WebSocket'],
    [{ protocols: [1] }, 'protocols'],
    [{ onError: 'log' }, 'onError'],
    [{ onStateChange: {} }, 'onStateChange'],
  ])('%j is refused at creation (%s)', (options, name) => {
    expect(() => create(options)).toThrow(TypeError);
    expect(() => create(options)).toThrow(name);
  });

  test('options that are not an object are refused', () => {
    expect(() => new RoomcastClient(url, 'fast' as never)).toThrow('options must be an object');
  });

  test('close() refuses codes a WebSocket cannot send', () => {
    const client = create({});
    expect(() => client.close(1006)).toThrow(RangeError);
    expect(() => client.close(5000)).toThrow(RangeError);
    client.close(4999);
    expect(client.state).toBe('disconnected');
  });
});
