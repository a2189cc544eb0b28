// The keys the package reads or binds are typed without a type argument (issue 19). The
// compile-time half of this test is `npm run typecheck`: on a `get` typed `unknown` the
// assignments below fail (TS2322), and the @ts-expect-error fails if a wrong value is accepted.
import { expect, test } from 'bun:test';
import { BaseApplication, WebSocketBindingKeys } from '../../src/core/index.ts';
import type { WebSocketServerHelper } from '../../src/index.ts';

test('SERVER_OPTIONS and WEBSOCKET_INSTANCE are typed by their key', () => {
  const app = new BaseApplication({ handleSignals: false });
  app.bind({ key: WebSocketBindingKeys.SERVER_OPTIONS }).toValue({ path: '/rt', defaultRooms: ['a'] });
  const path: string | undefined = app.get({ key: WebSocketBindingKeys.SERVER_OPTIONS }).path;
  expect(path).toBe('/rt');

  const helper: WebSocketServerHelper | undefined = app.get({
    key: WebSocketBindingKeys.WEBSOCKET_INSTANCE,
    isOptional: true,
  });
  expect(helper).toBeUndefined(); // nothing bound before the component starts

  // @ts-expect-error: path is a string
  app.bind({ key: WebSocketBindingKeys.SERVER_OPTIONS }).toValue({ path: 42 });
  // Other keys keep the explicit type argument.
  app.bind<number>({ key: 'answer' }).toValue(42);
  expect(app.get<number>({ key: 'answer' }) + 1).toBe(43);
});
