import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eventually, type ITestServer, recordingLogger, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

const handled: Array<{ clientId: string; userId?: string; message: unknown }> = [];
const logger = recordingLogger();
let server: ITestServer;

beforeAll(async () => {
  server = await startServer({
    logger,
    messageHandler: (opts) => {
      handled.push(opts);
      if ((opts.message as { event: string }).event === 'explode') throw new Error('handler bug');
      if ((opts.message as { event: string }).event === 'explode-async')
        return Promise.reject(new Error('async bug'));
    },
  });
});
afterAll(async () => {
  await server.stop();
});

describe('inbound frames', () => {
  test('application events reach messageHandler with clientId, userId and the message', async () => {
    const client = await TestClient.authenticated(server.url, { token: 'ok', user: 'carol' });
    client.send({ event: 'chat', data: { text: 'hi' }, id: 'm-1' });
    await eventually(() => handled.some((h) => h.clientId === client.id));
    expect(handled.find((h) => h.clientId === client.id)).toEqual({
      clientId: client.id,
      userId: 'carol',
      message: { event: 'chat', data: { text: 'hi' }, id: 'm-1' },
    });
    client.close();
  });

  test.each([
    ['invalid JSON', '{"event":', 'Invalid JSON'],
    ['a JSON array', '[1,2,3]', 'A message must be a JSON object'],
    ['a JSON string', '"authenticate"', 'A message must be a JSON object'],
    ['null', 'null', 'A message must be a JSON object'],
    ['a missing event', '{"data":1}', 'A message must have a non-empty string "event"'],
    ['a numeric event', '{"event":42}', 'A message must have a non-empty string "event"'],
    ['an empty event', '{"event":""}', 'A message must have a non-empty string "event"'],
    [
      'data nested 60 000 deep (within maxPayloadLength)',
      `{"event":"chat","data":${'['.repeat(60_000)}${']'.repeat(60_000)}}`,
      'Message nested too deeply',
    ],
  ])('%s gets an error event and the connection stays usable', async (_name, raw, message) => {
    const client = await TestClient.authenticated(server.url);
    const before = handled.length;
    client.sendRaw(raw);
    expect((await client.next('error')).data.message).toBe(message);
    server.helper.sendToClient({ clientId: client.id, event: 'still-open', data: 1 });
    await client.next('still-open');
    expect(handled.length).toBe(before);
    client.close();
  });

  test('binary frames get an error event, before and after authentication', async () => {
    const client = await TestClient.connect(server.url);
    client.sendRaw(new Uint8Array([1, 2, 3]));
    expect((await client.next('error')).data).toEqual({
      message: 'Binary frames are not supported; send JSON text',
      code: 'INVALID_FRAME',
    });
    client.send({ event: 'authenticate', data: { token: 'ok' } });
    await client.next('connected');
    client.sendRaw(new TextEncoder().encode('{"event":"chat"}'));
    await client.until(() => client.all('error').length === 2, 'second error');
    client.close();
  });

  test('ws:history is a system request: answered by the server, never by messageHandler', async () => {
    const client = await TestClient.authenticated(server.url);
    const before = handled.length;
    client.send({ event: 'ws:history', data: {}, id: 'h' });
    const error = await client.next('error');
    expect(error.data.code).toBe('INVALID_REQUEST');
    expect(error.id).toBe('h');
    expect(handled.length).toBe(before);
    client.close();
  });

  test('ws:presence is a system request: answered by the server (no presenceFn here), never by messageHandler', async () => {
    const client = await TestClient.authenticated(server.url);
    const before = handled.length;
    client.send({ event: 'ws:presence', data: { room: 'r' }, id: 'p' });
    const error = await client.next('error');
    expect(error.data.code).toBe('PRESENCE_UNAVAILABLE');
    expect(error.id).toBe('p');
    expect(handled.length).toBe(before);
    client.close();
  });

  test.each(['connected', 'disconnect', 'error', 'encrypted', 'ws:presence-x', 'ws:anything'])(
    'the reserved event "%s" never reaches messageHandler',
    async (event) => {
      const client = await TestClient.authenticated(server.url);
      const before = handled.length;
      client.send({ event, data: {} });
      const error = await client.next('error');
      expect(error.data).toEqual({
        message: `"${event}" is a reserved system event`,
        code: 'RESERVED_EVENT',
      });
      expect(handled.length).toBe(before);
      client.close();
    },
  );

  test('__proto__ and constructor keys are stripped from data', async () => {
    const client = await TestClient.authenticated(server.url);
    client.sendRaw(
      '{"event":"merge","data":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}},"keep":1}}',
    );
    await eventually(() => handled.some((h) => (h.message as { event: string }).event === 'merge'));
    const { message } = handled.find((h) => (h.message as { event: string }).event === 'merge')!;
    const data = (message as { data: Record<string, unknown> }).data;
    expect(Object.keys(data)).toEqual(['keep']);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.assign({}, data).isAdmin).toBeUndefined();
    client.close();
  });

  test('a throwing or rejecting messageHandler is logged and the connection keeps working', async () => {
    const client = await TestClient.authenticated(server.url);
    client.send({ event: 'explode' });
    client.send({ event: 'explode-async' });
    await eventually(() => logger.lines.some((l) => l.message === 'messageHandler threw'));
    await eventually(() => logger.lines.some((l) => l.message === 'messageHandler rejected'));
    client.send({ event: 'after' });
    await eventually(() =>
      handled.some((h) => h.clientId === client.id && (h.message as { event: string }).event === 'after'),
    );
    client.close();
  });

  test('any frame, heartbeat included, updates lastActivity', async () => {
    const client = await TestClient.authenticated(server.url);
    const tracked = server.helper.getClients({ id: client.id })!;
    tracked.lastActivity = 0;
    client.send({ event: 'heartbeat' });
    await eventually(() => tracked.lastActivity > 0);
    tracked.lastActivity = 0;
    client.sendRaw('not json');
    await eventually(() => tracked.lastActivity > 0);
    client.close();
  });
});

describe('frames over maxPayloadLength', () => {
  test('are refused by Bun with close code 1009 and the server keeps serving', async () => {
    const small = await startServer({ serverOptions: { maxPayloadLength: 1024 } });
    try {
      const client = await TestClient.authenticated(small.url);
      client.send({ event: 'big', data: 'x'.repeat(2048) });
      expect((await client.closedWithin()).code).toBe(1009);
      const fresh = await TestClient.authenticated(small.url);
      small.helper.sendToClient({ clientId: fresh.id, event: 'ok', data: 1 });
      await fresh.next('ok');
      fresh.close();
    } finally {
      await small.stop();
    }
  });
});

describe('request ids', () => {
  let rooms: ITestServer;
  beforeAll(async () => {
    rooms = await startServer({ validateRoomFn: ({ rooms: asked }) => asked.filter((r) => r !== 'secret') });
  });
  afterAll(async () => {
    await rooms.stop();
  });

  test('the id of a request comes back on the reply that answers it', async () => {
    const client = await TestClient.connect(rooms.url);
    client.send({ event: 'chat', data: 'early', id: 'r0' });
    expect((await client.next('error')).id).toBe('r0');
    client.send({ event: 'authenticate', data: { token: 'ok' }, id: 'r1' });
    expect((await client.next('connected')).id).toBe('r1');
    client.send({ event: 'authenticate', data: { token: 'ok' }, id: 'r2' });
    expect((await client.next('error', (d) => d.message === 'Already authenticated')).id).toBe('r2');
    client.send({ event: 'join', data: { rooms: ['a', 'secret'] }, id: 'r3' });
    const joined = await client.next('join');
    expect(joined).toEqual({ event: 'join', data: { rooms: ['a'] }, id: 'r3' });
    client.send({ event: 'leave', data: { rooms: ['a'] }, id: 'r4' });
    expect((await client.next('leave')).id).toBe('r4');
    client.send({ event: 'join', data: { rooms: 'a' }, id: 'r5' });
    expect((await client.next('error', (d) => d.message.startsWith('join expects'))).id).toBe('r5');
    client.send({ event: 'leave', id: 'r6' });
    expect((await client.next('error', (d) => d.message.startsWith('leave expects'))).id).toBe('r6');
    client.send({ event: 'connected', id: 'r7' });
    expect((await client.next('error', (d) => d.message.includes('reserved'))).id).toBe('r7');
    client.send({ event: '', id: 'r8' });
    expect((await client.next('error', (d) => d.message.includes('non-empty'))).id).toBe('r8');
    client.ws.close();
  });

  test('a refused authentication answers with the id too, and frames without an id get none', async () => {
    const refused = await TestClient.connect(rooms.url);
    refused.send({ event: 'authenticate', data: { token: 'bad' }, id: 'auth-1' });
    const error = await refused.next('error');
    expect(error.id).toBe('auth-1');
    expect(error.data).toMatchObject({ code: 'AUTH_FAILED', closeCode: 4003 });

    const plain = await TestClient.authenticated(rooms.url);
    plain.send({ event: 'join', data: { rooms: ['b'] } });
    await plain.next('join');
    expect(plain.raw.some((text) => text.includes('"id":"') && !text.includes('"event":"connected"'))).toBe(
      false,
    );
    expect(plain.frames.every((f) => !('id' in f))).toBe(true);
    plain.ws.close();
  });

  test('a non-string id is ignored, not echoed', async () => {
    const client = await TestClient.authenticated(rooms.url);
    client.send({ event: 'join', data: { rooms: ['c'] }, id: 42 });
    expect('id' in (await client.next('join'))).toBe(false);
    client.ws.close();
  });
});
