// Type-checked against the shipped declarations with Bun's types: `roomcast/core`
// is Bun-only, so an application using it has @types/bun.
import { RedisHelper } from 'roomcast';
import { BaseApplication, WebSocketBindingKeys, WebSocketComponent } from 'roomcast/core';

class ChatApp extends BaseApplication {
  override preConfigure(): void {
    this.bind({ key: WebSocketBindingKeys.AUTHENTICATE_HANDLER }).toValue(() => ({ userId: 'ada' }));
    this.bind({ key: WebSocketBindingKeys.REDIS_CONNECTION }).toValue(
      new RedisHelper({ name: 'ws', host: '127.0.0.1', port: 6379 }),
    );
    this.component(WebSocketComponent);
  }
}

const app = new ChatApp({ port: 0 });
const started: Promise<unknown> = app.start();
void started;
// @ts-expect-error binding keys are constants, not functions
WebSocketBindingKeys.SERVER_OPTIONS();
