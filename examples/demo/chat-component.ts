// Ties the chat service's lifecycle to the application's: registered after the
// WebSocket component, it starts after it (the helper exists) and stops before
// it (clients are taken off the member lists while Redis is still connected).

import type { BaseApplication, IComponent } from '../../src/core/index.ts';
import type { ChatService } from './chat-service.ts';

export const DemoBindingKeys = {
  CHAT_SERVICE: '@demo/chat-service',
} as const;

export class ChatComponent implements IComponent {
  constructor(private readonly application: BaseApplication) {}

  private get chat(): ChatService {
    return this.application.get<ChatService>({ key: DemoBindingKeys.CHAT_SERVICE });
  }

  async start(): Promise<void> {
    await this.chat.start();
  }

  async stop(): Promise<void> {
    await this.chat.stop();
  }
}
