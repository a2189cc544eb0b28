import { expect, test } from 'bun:test';
import pino from 'pino';
import { WebSocketBindingKeys } from '../../src/core/index.ts';
import { startApp, withAuth } from './app-fixture.ts';

test("with a pino logger, the application's and the component's own lines carry structured fields", async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const app = await startApp(
    withAuth({ [WebSocketBindingKeys.SERVER_OPTIONS]: { path: '/rt', authTimout: 1 } }),
    {
      logger,
    },
  );
  await app.stop();
  const find = (text: string) => lines.find((line) => String(line.msg).includes(text));
  expect(find('ignoring unknown server option')).toMatchObject({ level: 40, options: ['authTimout'] });
  expect(find('accepting WebSocket connections')).toMatchObject({
    level: 30,
    identifier: 'WEBSOCKET_SERVER',
    path: '/rt',
  });
  expect(find('listening on')).toMatchObject({
    level: 30,
    url: expect.stringContaining('http://127.0.0.1:'),
  });
});
