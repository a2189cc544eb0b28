import { afterEach, describe, expect, test } from 'bun:test';
import type { RoomcastClientError } from '../../src/client/index.ts';
import { EventRouter, MAX_HELD_EVENTS } from '../../src/server/event-router.ts';
import { WebSocketRequestError } from '../../src/server/request-error.ts';
import { closeAllClients, trackedClient } from '../client/support.ts';
import { type ITestServer, startServer } from '../support/server.ts';

/** The server-side router (`on` / `use`) against a real server and the real SDK. */

interface ClientEvents {
  add: { a: number; b: number };
  whoami: undefined;
  step: { n: number };
  other: { x: number };
}
interface Replies {
  add: number;
  whoami: { user: string; role: string };
}
interface State {
  user: string;
  trail: string[];
}

let server: ITestServer | undefined;
afterEach(async () => {
  closeAllClients();
  await server?.stop();
  server = undefined;
});

async function client() {
  const tracked = trackedClient<Record<string, unknown>, ClientEvents>(server!.url);
  await tracked.client.ready;
  return tracked;
}

/** An authenticated raw socket, to see the exact frames (ids included). */
function raw(url: string): Promise<{ ws: WebSocket; frames: Array<Record<string, unknown>> }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const frames: Array<Record<string, unknown>> = [];
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data));
      frames.push(frame);
      if (frame.event === 'connected') resolve({ ws, frames });
    };
    ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
  });
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3_000;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe('helper.on', () => {
  test('a handler answers a request with what it returns, sync or async, with typed data', async () => {
    server = await startServer();
    const router = server.helper.router<ClientEvents, Replies, State>();
    router.on('add', ({ data }) => data.a + data.b);
    router.on('whoami', async ({ userId, metadata }) => {
      await Bun.sleep(5);
      return { user: userId ?? '', role: String((metadata as { role?: string }).role) };
    });
    const { client: sdk, errors } = await client();
    expect(await sdk.request('add', { a: 2, b: 3 })).toBe(5);
    expect(await sdk.request('whoami')).toEqual({ user: 'u1', role: 'tester' });
    expect(errors).toEqual([]);
  });

  test('events without a handler fall through to messageHandler; handled ones never reach it', async () => {
    const seen: unknown[] = [];
    server = await startServer({
      messageHandler: ({ message }) => {
        seen.push([message.event, message.data, message.id !== undefined]);
        return `mh:${message.event}`;
      },
    });
    const router = server.helper.router<ClientEvents, Replies>();
    router.on('add', ({ data }) => data.a + data.b);
    const { client: sdk } = await client();
    sdk.emit('other', { x: 1 });
    expect(await sdk.request('other', { x: 2 })).toBe('mh:other');
    expect(await sdk.request('add', { a: 1, b: 1 })).toBe(2);
    sdk.emit('add', { a: 0, b: 0 });
    expect(await sdk.request('step', { n: 0 })).toBe('mh:step');
    expect(seen).toEqual([
      ['other', { x: 1 }, false],
      ['other', { x: 2 }, true],
      ['step', { n: 0 }, true],
    ]);
  });

  test('the remover returns the event to messageHandler; one handler per event; reserved names are refused', async () => {
    server = await startServer({ messageHandler: () => 'fallback' });
    const off = server.helper.on('ping', () => 'routed');
    expect(() => server!.helper.on('ping', () => 'again')).toThrow('already has a handler');
    for (const name of ['join', 'authenticate', 'ws:ack', 'ws:anything', '']) {
      expect(() => server!.helper.on(name, () => 1)).toThrow(TypeError);
    }
    const sdk = trackedClient(server.url).client;
    await sdk.ready;
    expect(await sdk.request('ping')).toBe('routed');
    off();
    expect(await sdk.request('ping')).toBe('fallback');
  });

  test('errors become codes: a WebSocketRequestError keeps its own, anything else is INTERNAL without detail', async () => {
    server = await startServer();
    server.helper.on('forbidden', () => {
      throw new WebSocketRequestError('FORBIDDEN', 'not yours');
    });
    server.helper.on('boom', () => {
      throw new Error('secret detail');
    });
    server.helper.on('later', () => Promise.reject(new WebSocketRequestError('LATER', 'try later')));
    const { client: sdk } = await client();
    const codes: Array<[string | undefined, string]> = [];
    for (const event of ['forbidden', 'boom', 'later'] as const) {
      const error = (await sdk.request(event as never).catch((e) => e)) as RoomcastClientError;
      codes.push([error.serverCode, error.message]);
      expect(JSON.stringify(error.details)).not.toContain('secret');
    }
    expect(codes).toEqual([
      ['FORBIDDEN', 'not yours'],
      ['INTERNAL', 'The request failed'],
      ['LATER', 'try later'],
    ]);
  });
});

describe('zero cost while unused', () => {
  test('no frame enters the router until something is registered; then every app frame does', async () => {
    const dispatch = EventRouter.prototype.dispatch;
    let calls = 0;
    EventRouter.prototype.dispatch = function (this: EventRouter, ...args) {
      calls++;
      return dispatch.apply(this, args);
    };
    try {
      server = await startServer({ messageHandler: ({ message }) => message.event });
      const { client: sdk } = await client();
      expect(await sdk.request('other', { x: 1 })).toBe('other');
      sdk.emit('other', { x: 2 });
      expect(await sdk.request('other', { x: 3 })).toBe('other');
      expect(calls).toBe(0);
      server.helper.use(() => undefined);
      expect(await sdk.request('other', { x: 4 })).toBe('other');
      expect(calls).toBe(1);
    } finally {
      EventRouter.prototype.dispatch = dispatch;
    }
  });
});

describe('helper.use', () => {
  test('middleware runs in registration order before the handler and before messageHandler; state reaches the handler', async () => {
    const calls: string[] = [];
    server = await startServer({
      messageHandler: ({ message }) => {
        calls.push(`messageHandler:${message.event}`);
        return 'mh';
      },
    });
    const router = server.helper.router<ClientEvents, Replies, State>();
    router.use((ctx) => {
      calls.push(`first:${ctx.event}`);
      ctx.state.trail = ['first'];
    });
    router.use(async (ctx) => {
      await Bun.sleep(5);
      calls.push(`second:${ctx.event}`);
      ctx.state.user = `${ctx.userId}:${ctx.clientId.length}`;
      ctx.state.trail?.push('second');
    });
    router.use((ctx) => {
      calls.push(`third:${ctx.event}`);
    });
    router.on('whoami', ({ state }) => {
      calls.push('handler:whoami');
      return { user: state.user ?? '', role: (state.trail ?? []).join('>') };
    });
    const { client: sdk } = await client();
    expect(await sdk.request('whoami')).toEqual({ user: 'u1:36', role: 'first>second' });
    expect(await sdk.request('other', { x: 1 })).toBe('mh');
    expect(calls).toEqual([
      'first:whoami',
      'second:whoami',
      'third:whoami',
      'handler:whoami',
      'first:other',
      'second:other',
      'third:other',
      'messageHandler:other',
    ]);
  });

  test('a refusal answers with its code and the request id; later middleware, handler and messageHandler are skipped', async () => {
    const reached: string[] = [];
    server = await startServer({
      messageHandler: ({ message }) => {
        reached.push(`messageHandler:${message.event}`);
      },
    });
    server.helper.use(({ event, data }) => {
      if ((data as { deny?: string } | undefined)?.deny === 'sync')
        throw new WebSocketRequestError('DENIED', `no ${event}`);
    });
    server.helper.use(async ({ data }) => {
      if ((data as { deny?: string } | undefined)?.deny === 'async')
        throw new WebSocketRequestError('LATER', 'async no');
      if ((data as { deny?: string } | undefined)?.deny === 'crash') throw new Error('secret');
    });
    server.helper.use(({ event }) => {
      reached.push(`third:${event}`);
    });
    server.helper.on('guarded', ({ data }) => {
      reached.push('handler:guarded');
      return data;
    });
    const { ws, frames } = await raw(server.url);
    ws.send(JSON.stringify({ event: 'guarded', id: 'r1', data: { deny: 'sync' } }));
    ws.send(JSON.stringify({ event: 'guarded', id: 'r2', data: { deny: 'async' } }));
    ws.send(JSON.stringify({ event: 'free', id: 'r3', data: { deny: 'crash' } }));
    ws.send(JSON.stringify({ event: 'free', data: { deny: 'sync' } }));
    ws.send(JSON.stringify({ event: 'guarded', id: 'r4', data: { ok: true } }));
    await until(() => frames.length >= 6, 'five answers');
    expect(frames.slice(1)).toEqual([
      { event: 'error', data: { code: 'DENIED', message: 'no guarded' }, id: 'r1' },
      { event: 'error', data: { code: 'LATER', message: 'async no' }, id: 'r2' },
      { event: 'error', data: { code: 'INTERNAL', message: 'The request failed' }, id: 'r3' },
      { event: 'error', data: { code: 'DENIED', message: 'no free' } },
      { event: 'ws:reply', data: { ok: true }, id: 'r4' },
    ]);
    expect(reached).toEqual(['third:guarded', 'handler:guarded']);
    ws.close();
  });

  test('refusals are the application’s answers: they do not count towards closeAfterRefusals', async () => {
    server = await startServer({ limits: { closeAfterRefusals: 3, messagesPerSecond: false } });
    server.helper.use(() => {
      throw new WebSocketRequestError('DENIED', 'no');
    });
    const { client: sdk } = await client();
    for (let n = 0; n < 10; n++) {
      const error = (await sdk.request('other', { x: n }).catch((e) => e)) as RoomcastClientError;
      expect(error.serverCode).toBe('DENIED');
    }
    expect(sdk.state).toBe('connected');
  });

  test('an async middleware keeps each connection’s order: later events wait, other connections do not', async () => {
    const order: Array<[string, number]> = [];
    server = await startServer({ limits: { messagesPerSecond: false } });
    // The first events of a connection take longest: without holding, the handler would see them last.
    server.helper.use(async ({ data }) => {
      const { n } = data as { n: number };
      if (n < 5) await Bun.sleep((5 - n) * 15);
    });
    const router = server.helper.router<ClientEvents, Replies>();
    router.on('step', ({ data, userId }) => {
      order.push([userId ?? '', data.n]);
    });
    const a = trackedClient<Record<string, unknown>, ClientEvents>(server.url, {
      auth: { token: 'ok', user: 'a' },
    });
    const b = trackedClient<Record<string, unknown>, ClientEvents>(server.url, {
      auth: { token: 'ok', user: 'b' },
    });
    await Promise.all([a.client.ready, b.client.ready]);
    for (let n = 0; n < 20; n++) a.client.emit('step', { n });
    b.client.emit('step', { n: 100 });
    await until(() => order.length === 21, 'every step');
    const ofA = order.filter(([user]) => user === 'a').map(([, n]) => n);
    expect(ofA).toEqual(Array.from({ length: 20 }, (_, n) => n));
    // b's event did not wait for a's slow middleware.
    expect(order.findIndex(([user]) => user === 'b')).toBeLessThan(
      order.findIndex(([user, n]) => user === 'a' && n === 0),
    );
    // Nothing is left counted as pending once everything ran.
    for (const c of server.helper.getClients().values()) expect(c.pendingRequests ?? 0).toBe(0);
  });

  test('requests held behind an async middleware count against maxPendingRequests', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    server = await startServer({ limits: { maxPendingRequests: 3, messagesPerSecond: false } });
    server.helper.use(async ({ data }) => {
      if ((data as { n: number }).n === 0) await gate;
    });
    server.helper.on('step', ({ data }) => (data as { n: number }).n);
    const { ws, frames } = await raw(server.url);
    for (let n = 0; n < 5; n++) ws.send(JSON.stringify({ event: 'step', id: `s${n}`, data: { n } }));
    await until(() => frames.length >= 3, 'two refusals');
    expect(frames.slice(1).map((f) => [f.id, (f.data as { code?: string }).code])).toEqual([
      ['s3', 'TOO_MANY_PENDING'],
      ['s4', 'TOO_MANY_PENDING'],
    ]);
    release();
    await until(() => frames.length >= 6, 'three answers');
    expect(frames.slice(3)).toEqual([
      { event: 'ws:reply', data: 0, id: 's0' },
      { event: 'ws:reply', data: 1, id: 's1' },
      { event: 'ws:reply', data: 2, id: 's2' },
    ]);
    for (const c of server.helper.getClients().values()) expect(c.pendingRequests ?? 0).toBe(0);
    ws.close();
  });

  test(`past ${MAX_HELD_EVENTS} events waiting behind a middleware, the next are refused with TOO_MANY_PENDING`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: number[] = [];
    server = await startServer({ limits: { messagesPerSecond: false, maxPendingRequests: 1_000 } });
    server.helper.use(async ({ data }) => {
      if ((data as { n: number }).n === 0) await gate;
    });
    server.helper.on('step', ({ data }) => {
      handled.push((data as { n: number }).n);
    });
    const { ws, frames } = await raw(server.url);
    // One held by the middleware, MAX_HELD_EVENTS waiting, then two too many (one of them a request).
    for (let n = 0; n <= MAX_HELD_EVENTS + 1; n++) ws.send(JSON.stringify({ event: 'step', data: { n } }));
    ws.send(JSON.stringify({ event: 'step', id: 'late', data: { n: -1 } }));
    await until(() => frames.length >= 3, 'two refusals');
    expect(frames.slice(1).map((f) => [f.id, (f.data as { code?: string }).code])).toEqual([
      [undefined, 'TOO_MANY_PENDING'],
      ['late', 'TOO_MANY_PENDING'],
    ]);
    release();
    await until(() => handled.length === MAX_HELD_EVENTS + 1, 'the held events');
    expect(handled).toEqual(Array.from({ length: MAX_HELD_EVENTS + 1 }, (_, n) => n));
    ws.close();
  });

  test('reserved and system events never reach middleware or handlers', async () => {
    const seen: string[] = [];
    server = await startServer({ validateRoomFn: ({ rooms }) => rooms });
    server.helper.use(({ event }) => {
      seen.push(event);
    });
    const { ws, frames } = await raw(server.url);
    ws.send(JSON.stringify({ event: 'join', id: 'j', data: { rooms: ['r'] } }));
    ws.send(JSON.stringify({ event: 'heartbeat' }));
    ws.send(JSON.stringify({ event: 'ws:madeup', id: 'm' }));
    ws.send(JSON.stringify({ event: 'encrypted', id: 'e' }));
    ws.send(JSON.stringify({ event: 'app', id: 'a' }));
    await until(() => frames.some((f) => f.id === 'a'), 'the app answer');
    expect(seen).toEqual(['app']);
    const codes = frames
      .filter((f) => f.event === 'error')
      .map((f) => [f.id, (f.data as { code: string }).code]);
    expect(codes).toEqual([
      ['m', 'RESERVED_EVENT'],
      ['e', 'RESERVED_EVENT'],
    ]);
    ws.close();
  });
});
