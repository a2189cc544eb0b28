import { afterEach, describe, expect, test } from 'bun:test';
import type { RoomcastClientError, TWebSocketConstructor } from '../../src/client/index.ts';
import { WebSocketLimits } from '../../src/common/constants.ts';
import type { IWebSocketMessage } from '../../src/common/types.ts';
import { peekRequestId } from '../../src/server/inbound-limits.ts';
import { figure } from '../support/figures.ts';
import { eventually, type ITestServer, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { closeAllClients, recordingWebSocket, trackedClient } from './support.ts';

/**
 * `client.request()` bursts against a real server with its limits on: the SDK learns the limits
 * from `connected`, keeps the rest queued in order and paces them, so every request is answered or
 * rejected with its own code, and a frame the server refuses for rate is answered with its id.
 */

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

/** An async handler (so requests count as pending on the server) that records the most ever pending. */
function concurrencyProbe() {
  const probe = {
    running: 0,
    most: 0,
    handled: 0,
    messageHandler: async ({ message }: { message: IWebSocketMessage }) => {
      if (message.id === undefined) return undefined; // emits
      probe.running++;
      probe.most = Math.max(probe.most, probe.running);
      await Bun.sleep(Math.floor(Math.random() * 4));
      probe.running--;
      probe.handled++;
      return { n: (message.data as { n: number }).n };
    },
  };
  return probe;
}

/** The real WebSocket, with the `limits` field taken out of `connected`: what a server older than it sends. */
function withoutAnnouncedLimits(): TWebSocketConstructor {
  class OldServerView extends WebSocket {
    override set onmessage(handler: ((event: MessageEvent) => void) | null) {
      super.onmessage = handler
        ? (event: MessageEvent) => {
            const frame = JSON.parse(String(event.data));
            if (frame.event === 'connected') delete frame.data.limits;
            handler({ data: JSON.stringify(frame) } as MessageEvent);
          }
        : null;
    }
  }
  return OldServerView as unknown as TWebSocketConstructor;
}

describe('request pacing', () => {
  test('connected announces the limits a client paces by (only those that are on)', async () => {
    server = await startServer();
    const defaults = await TestClient.authenticated(server.url);
    expect(defaults.all('connected')[0]!.data.limits).toEqual({
      maxPendingRequests: WebSocketLimits.MAX_PENDING_REQUESTS,
      messagesPerSecond: WebSocketLimits.MESSAGES_PER_SECOND,
      messageBurst: WebSocketLimits.MESSAGES_PER_SECOND * 2,
      bytesPerSecond: WebSocketLimits.BYTES_PER_SECOND,
      bytesBurst: WebSocketLimits.BYTES_PER_SECOND * 2,
    });
    defaults.close();
    await server.stop();
    server = await startServer({ limits: { messagesPerSecond: 5, bytesPerSecond: false } });
    const partial = await TestClient.authenticated(server.url);
    expect(partial.all('connected')[0]!.data.limits).toEqual({
      maxPendingRequests: WebSocketLimits.MAX_PENDING_REQUESTS,
      messagesPerSecond: 5,
      messageBurst: 10,
    });
    partial.close();
  });

  test('10 000 requests at once on one connection, default limits, emits alongside: all answered, the connection stays open', async () => {
    const probe = concurrencyProbe();
    server = await startServer({ messageHandler: probe.messageHandler });
    const wire = recordingWebSocket();
    const { client, errors, states } = trackedClient(server.url, {
      WebSocket: wire.WebSocket,
      heartbeatInterval: 5_000,
    });
    const { id } = await client.ready;
    const started = Date.now();
    const total = 10_000;
    // Other frames share the server's frame budget: requests must leave room for them.
    const ticker = setInterval(() => client.emit('tick', { at: Date.now() }), 250);
    let answered = 0;
    const answers = await Promise.all(
      Array.from({ length: total }, (_, n) =>
        client.request('square', { n }, { timeout: 300_000 }).then((answer) => {
          answered++;
          return (answer as { n: number }).n;
        }),
      ),
    ).finally(() => clearInterval(ticker));
    const seconds = (Date.now() - started) / 1000;
    expect(answers).toEqual([...Array(total).keys()]);
    expect(answered).toBe(total);
    expect(errors).toEqual([]);
    expect(wire.received.filter((frame) => frame.includes('"event":"error"'))).toEqual([]);
    expect(wire.opened).toBe(1);
    expect(client.state).toBe('connected');
    expect(client.connection?.id).toBe(id);
    expect(states.filter((s) => s.state === 'reconnecting')).toEqual([]);
    expect(probe.most).toBeLessThanOrEqual(WebSocketLimits.MAX_PENDING_REQUESTS);
    // Sent in call order: the server saw the requests' n ascending.
    const sentOrder = wire.sent
      .filter((frame) => frame.startsWith('{"event":"square"'))
      .map((frame) => JSON.parse(frame).data.n);
    expect(sentOrder).toEqual([...Array(total).keys()]);
    // Paced, not a flood: 200 burst then 100 frames/s (a bound that also proves it was not instant).
    expect(seconds).toBeGreaterThan((total - 2 * WebSocketLimits.MESSAGES_PER_SECOND) / 100 - 5);
    figure(
      'requests.pacing-10000',
      `requests=${total} answered=${answered} seconds=${seconds.toFixed(1)} mostPending=${probe.most} emits=${wire.sent.filter((f) => f.startsWith('{"event":"tick"')).length}`,
    );
  }, 240_000);

  test('the byte rate is paced by UTF-8 size, and a lower maxPendingRequests by its own window', async () => {
    const probe = concurrencyProbe();
    server = await startServer({
      limits: {
        messagesPerSecond: false,
        bytesPerSecond: 40_000,
        bytesBurst: 40_000,
        maxPendingRequests: 20,
      },
      messageHandler: probe.messageHandler,
    });
    const { client, errors } = trackedClient(server.url);
    await client.ready;
    // 1 000 characters, 2 000 bytes each: paced by length, twice too many would go out.
    const payload = 'é'.repeat(1_000);
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, n) =>
        client.request('square', { n, payload }, { timeout: 20_000 }).then((a) => (a as { n: number }).n),
      ),
    );
    expect(answers).toEqual([...Array(60).keys()]);
    expect(errors).toEqual([]);
    // 120 KB at 40 KB/s after a 36 KB burst (a tenth kept spare): about 2 s.
    expect(Date.now() - started).toBeGreaterThan(1_500);
    expect(probe.most).toBeLessThanOrEqual(20 - 17);
  }, 30_000);

  test('a server without the limits field: the SDK assumes the defaults and 600 requests at once are all answered', async () => {
    const probe = concurrencyProbe();
    server = await startServer({ messageHandler: probe.messageHandler });
    const { client, errors } = trackedClient(server.url, { WebSocket: withoutAnnouncedLimits() });
    const { id } = await client.ready;
    const answers = await Promise.all(
      Array.from({ length: 600 }, (_, n) =>
        client.request('square', { n }, { timeout: 60_000 }).then((a) => (a as { n: number }).n),
      ),
    );
    expect(answers).toEqual([...Array(600).keys()]);
    expect(errors).toEqual([]);
    expect(client.connection?.id).toBe(id);
    expect(probe.most).toBeLessThanOrEqual(WebSocketLimits.MAX_PENDING_REQUESTS);
  }, 30_000);

  test('limits off: connected announces {} (not "unknown"), and nothing is paced', async () => {
    const probe = concurrencyProbe();
    server = await startServer({ limits: false, messageHandler: probe.messageHandler });
    const wire = recordingWebSocket();
    const { client } = trackedClient(server.url, { WebSocket: wire.WebSocket });
    await client.ready;
    expect(JSON.parse(wire.received[0]!).data.limits).toEqual({});
    const started = Date.now();
    await Promise.all(Array.from({ length: 2_000 }, (_, n) => client.request('square', { n })));
    // With the default pacing 2 000 requests take 18 s; unpaced, far less.
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(probe.most).toBeGreaterThan(WebSocketLimits.MAX_PENDING_REQUESTS);
  }, 30_000);

  test('a frame refused for rate is answered at once with its id (id first or last); one without a readable id is not', async () => {
    let handled = 0;
    server = await startServer({
      limits: { messagesPerSecond: 1, messageBurst: 2 },
      messageHandler: () => {
        handled++;
        return 'ok';
      },
    });
    const client = await TestClient.authenticated(server.url); // `authenticate` spent one of the burst
    const sentAt = Date.now();
    client.sendRaw('{"event":"ask","data":{"n":0},"id":"a0"}'); // the last token: answered
    client.sendRaw('{"event":"ask","data":{"id":"inner"},"id":"a1"}');
    client.sendRaw('{"id":"a2","event":"ask","data":{"n":2}}');
    client.sendRaw('{"event":"ask","id":"a3","data":{"n":3}}'); // id in the middle: not read
    client.sendRaw('{"event":"ask","data":{"n":4},"id":"a4"}');
    await client.until(() => client.all('error').length >= 3, 'three refusals', 3_000);
    const refused = client.all('error');
    // Answered as they arrive, far from any request timeout (10 s by default).
    expect(Date.now() - sentAt).toBeLessThan(3_000);
    expect(refused.map((f) => [f.id, f.data.code])).toEqual([
      ['a1', 'RATE_LIMITED'],
      ['a2', 'RATE_LIMITED'],
      ['a4', 'RATE_LIMITED'],
    ]);
    expect(client.all('ws:reply').map((f) => f.id)).toEqual(['a0']);
    expect(handled).toBe(1);
    expect(client.closeInfo).toBeUndefined();
    client.close();
  });

  test('the SDK rejects a request the server refused for rate with RATE_LIMITED at once, not after its timeout', async () => {
    server = await startServer({
      limits: { messagesPerSecond: 1, messageBurst: 3 },
      messageHandler: () => 'ok',
    });
    // The field removed, so the SDK believes the defaults (100/s) and sends more than 1/s.
    const { client } = trackedClient(server.url, { WebSocket: withoutAnnouncedLimits() });
    await client.ready;
    const started = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, n) =>
        client.request('ask', { n }, { timeout: 8_000 }).then(
          () => 'ok',
          (error: RoomcastClientError) => `${error.code}:${error.serverCode}`,
        ),
      ),
    );
    expect(Date.now() - started).toBeLessThan(4_000); // their timeout is 8 s
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThanOrEqual(1);
    expect(outcomes.filter((o) => o !== 'ok').every((o) => o === 'SERVER_ERROR:RATE_LIMITED')).toBe(true);
    expect(outcomes).toContain('SERVER_ERROR:RATE_LIMITED');
    expect(client.state).toBe('connected');
  });

  test('on reconnect: sent requests reject with CONNECTION_LOST, queued ones go out on the next connection; none times out', async () => {
    const probe = concurrencyProbe();
    server = await startServer({ messageHandler: probe.messageHandler });
    const { client } = trackedClient(server.url);
    const first = await client.ready;
    const outcomes: string[] = [];
    const all = Promise.all(
      Array.from({ length: 600 }, (_, n) =>
        client.request('square', { n }, { timeout: 60_000 }).then(
          () => outcomes.push('answered'),
          (error: RoomcastClientError) => outcomes.push(error.code),
        ),
      ),
    );
    await eventually(() => probe.handled >= 250, 5_000, 'a part answered');
    await server.helper.disconnect({ clientId: first.id, code: 3000, reason: 'test' });
    await all;
    expect(outcomes.length).toBe(600);
    expect(outcomes.filter((o) => o !== 'answered' && o !== 'CONNECTION_LOST')).toEqual([]);
    // At most a window of them was in flight when the connection dropped; the rest was answered after.
    const lost = outcomes.filter((o) => o === 'CONNECTION_LOST').length;
    expect(lost).toBeLessThanOrEqual(WebSocketLimits.MAX_PENDING_REQUESTS);
    expect(outcomes.filter((o) => o === 'answered').length).toBe(600 - lost);
    expect(client.connection?.id).not.toBe(first.id);
  }, 30_000);

  test('a request that times out while still queued says it was never sent', async () => {
    server = await startServer({
      limits: { messagesPerSecond: 2, messageBurst: 2 },
      messageHandler: () => 'ok',
    });
    const { client } = trackedClient(server.url);
    await client.ready;
    const requests = Array.from({ length: 4 }, (_, n) =>
      client.request('ask', { n }, { timeout: 300 }).catch((error: RoomcastClientError) => error),
    );
    const last = (await requests[3]) as RoomcastClientError;
    expect(last.code).toBe('REQUEST_TIMEOUT');
    expect(last.details).toMatchObject({ sent: false });
  });
});

describe('peekRequestId', () => {
  test('reads a top-level id at either end without parsing, and nothing it cannot be sure of', () => {
    expect(peekRequestId('{"event":"a","data":{"x":1},"id":"q12"}')).toBe('q12');
    expect(peekRequestId('{"id":"q1","event":"a"}')).toBe('q1');
    expect(peekRequestId('{"event":"a","data":{"id":"inner"}}')).toBeUndefined();
    expect(peekRequestId('{"event":"a", "id": "q1"}')).toBeUndefined();
    expect(peekRequestId('{"event":"a","id":"q\\"1"}')).toBeUndefined();
    expect(peekRequestId('{"event":"a","id":""}')).toBeUndefined();
    expect(peekRequestId(`{"event":"a","id":"${'i'.repeat(129)}"}`)).toBeUndefined();
    expect(peekRequestId(`{"event":"a","id":"${'i'.repeat(128)}"}`)).toBe('i'.repeat(128));
    expect(peekRequestId('"}')).toBeUndefined();
    expect(peekRequestId(new Uint8Array(4))).toBeUndefined();
  });
});
