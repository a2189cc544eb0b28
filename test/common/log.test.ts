import { describe, expect, test } from 'bun:test';
import pino from 'pino';
import { adaptLogger, clientFields, debugLogged, logFields } from '../../src/common/log.ts';
import { createConsoleLogger, silentLogger } from '../../src/common/logger.ts';
import type { ILogger } from '../../src/common/types.ts';
import { eventually, startServer } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';

/** A real pino logger writing JSON lines into an array. */
function pinoLines(level = 'debug') {
  const lines: Array<Record<string, any>> = [];
  const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A console-style logger that records every argument. */
function consoleStyle() {
  const calls: Array<{ level: string; args: unknown[] }> = [];
  const at =
    (level: string) =>
    (...args: unknown[]) =>
      calls.push({ level, args });
  const logger: ILogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, calls };
}

describe('adaptLogger', () => {
  test('a pino logger gets (fields, message): fields, err from an Error, detail from anything else, child bindings', () => {
    const { logger, lines } = pinoLines();
    const log = adaptLogger(logger as unknown as ILogger, { bindings: { identifier: 'chat' } });
    const failure = new Error('boom');
    log.error('send failed', clientFields({ id: 'c1', userId: 'alice' }, { room: 'r', error: failure }));
    log.warn('Redis publish failed', 'connection refused', logFields({ channel: 'ws:room:r' }));
    log.info('plain');
    expect(lines[0]).toMatchObject({
      level: 50,
      msg: 'send failed',
      identifier: 'chat',
      clientId: 'c1',
      userId: 'alice',
      room: 'r',
      err: { type: 'Error', message: 'boom' },
    });
    expect(lines[1]).toMatchObject({ level: 40, detail: 'connection refused', channel: 'ws:room:r' });
    expect(lines[2]).toMatchObject({ level: 30, msg: 'plain', identifier: 'chat' });
    expect(adaptLogger(log)).toBe(log); // adapting twice changes nothing
  });

  test('a console-style logger gets (message, ...args) as before: no fields object, the error in its place', () => {
    const { logger, calls } = consoleStyle();
    const log = adaptLogger(logger);
    const failure = new Error('boom');
    log.error('send failed for client c1', clientFields({ id: 'c1' }, { error: failure }));
    log.warn('Redis error', 'ECONNREFUSED', logFields({ channel: 'x' }));
    expect(calls).toEqual([
      { level: 'error', args: ['send failed for client c1', failure] },
      { level: 'warn', args: ['Redis error', 'ECONNREFUSED'] },
    ]);
  });

  test('structured: false calls a pino logger message-first; structured: true calls any logger fields-first', () => {
    const { logger, lines } = pinoLines();
    adaptLogger(logger as unknown as ILogger, { structured: false }).warn(
      'text only',
      logFields({ clientId: 'c' }),
    );
    expect(lines[0]).toMatchObject({ msg: 'text only' });
    expect(lines[0]).not.toHaveProperty('clientId');
    const { logger: plain, calls } = consoleStyle();
    adaptLogger(plain, { structured: true }).info('m', logFields({ clientId: 'c' }));
    expect(calls).toEqual([{ level: 'info', args: [{ clientId: 'c' }, 'm'] }]);
  });

  test('debugLogged: the level check a per-connection debug line waits for', () => {
    expect(debugLogged(adaptLogger(pinoLines('info').logger as unknown as ILogger))).toBe(false);
    expect(debugLogged(adaptLogger(pinoLines('debug').logger as unknown as ILogger))).toBe(true);
    expect(debugLogged(adaptLogger(silentLogger))).toBe(false);
    // A logger that cannot tell gets every line, as before.
    expect(debugLogged(adaptLogger(consoleStyle().logger))).toBe(true);
    const before = process.env.ROOMCAST_DEBUG;
    try {
      delete process.env.ROOMCAST_DEBUG;
      const console = adaptLogger(createConsoleLogger('t'));
      expect(debugLogged(console)).toBe(false);
      process.env.ROOMCAST_DEBUG = '1';
      expect(debugLogged(console)).toBe(true); // read when asked, as the console default's debug does
    } finally {
      if (before === undefined) delete process.env.ROOMCAST_DEBUG;
      else process.env.ROOMCAST_DEBUG = before;
    }
  });
});

describe('structured logs from a real server', () => {
  test('pino as the helper logger: client lines carry clientId, userId, room, close code and err; nothing per message', async () => {
    const { logger, lines } = pinoLines();
    const server = await startServer({
      logger: logger as unknown as ILogger,
      validateRoomFn: ({ rooms }: { rooms: string[] }) => {
        if (rooms.includes('bad')) throw new Error('validator broke');
        return rooms;
      },
    });
    try {
      const client = await TestClient.authenticated(server.url, { token: 'ok', user: 'alice' });
      const authenticated = lines.find((l) => l.msg?.includes('authenticated'));
      expect(authenticated).toMatchObject({
        level: 20,
        clientId: client.id,
        userId: 'alice',
        identifier: 'test-ws',
        serverId: server.helper.serverId,
      });

      client.send({ event: 'join', data: { rooms: ['bad'] }, id: 'j' });
      await client.next('join');
      expect(lines.find((l) => l.msg?.startsWith('validateRoomFn threw'))).toMatchObject({
        level: 50,
        clientId: client.id,
        userId: 'alice',
        err: { message: 'validator broke' },
      });

      const before = lines.length;
      client.send({ event: 'join', data: { rooms: ['fine'] }, id: 'k' });
      await client.next('join', (d) => d.rooms?.[0] === 'fine');
      for (let i = 0; i < 20; i++)
        server.helper.send({ destination: 'fine', payload: { topic: 'm', data: i } });
      await client.until(() => client.all('m').length === 20, '20 messages');
      expect(lines.length).toBe(before); // no line per message

      client.close();
      await eventually(() => lines.some((l) => l.msg?.includes('disconnected')), 2_000, 'disconnect logged');
      expect(lines.find((l) => l.msg?.includes('disconnected'))).toMatchObject({
        clientId: client.id,
        userId: 'alice',
        code: 1005,
      });
    } finally {
      await server.stop();
    }
  });

  test('a logger whose isLevelEnabled refuses debug: the per-connection debug lines are not built', async () => {
    const { logger, calls } = consoleStyle();
    const refusing: ILogger = { ...logger, isLevelEnabled: (level) => level !== 'debug' };
    const server = await startServer({ logger: refusing });
    try {
      const client = await TestClient.authenticated(server.url, { token: 'ok', user: 'alice' });
      client.close();
      await eventually(() => server.helper.getStats().clients === 0, 2_000, 'client gone');
      expect(calls.filter((c) => c.level === 'debug')).toEqual([]);
      // The same server with a logger that cannot tell gets both lines (what the check skips).
      const { logger: telling, calls: told } = consoleStyle();
      const second = await startServer({ logger: telling });
      try {
        const other = await TestClient.authenticated(second.url);
        other.close();
        await eventually(() => second.helper.getStats().clients === 0, 2_000, 'client gone');
        expect(told.filter((c) => c.level === 'debug').length).toBe(2);
      } finally {
        await second.stop();
      }
    } finally {
      await server.stop();
    }
  });

  test('a console-style logger on a real server still gets message strings and the error', async () => {
    const { logger, calls } = consoleStyle();
    const server = await startServer({
      logger,
      validateRoomFn: () => {
        throw new Error('validator broke');
      },
    });
    try {
      const client = await TestClient.authenticated(server.url);
      client.send({ event: 'join', data: { rooms: ['x'] }, id: 'j' });
      await client.next('join');
      const line = calls.find((c) => String(c.args[0]).startsWith('validateRoomFn threw'));
      expect(line?.level).toBe('error');
      expect(line?.args[0]).toBe(`validateRoomFn threw for client ${client.id}; join denied`);
      expect((line?.args[1] as Error | undefined)?.message).toBe('validator broke');
      expect(calls.every((c) => typeof c.args[0] === 'string')).toBe(true);
      client.close();
    } finally {
      await server.stop();
    }
  });
});
