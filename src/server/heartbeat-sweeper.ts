import { WebSocketClientStates, WebSocketCloseCodes } from '../common/constants.ts';
import type { AnyRecord } from '../common/types.ts';
import type { ClientRegistry } from './client-registry.ts';

/**
 * Passive heartbeat: every `interval` ms, authenticated clients silent for more
 * than `timeout` ms are closed with 4002. The server never pings; any client
 * frame counts as activity.
 */
export class HeartbeatSweeper<M extends object = AnyRecord> {
  private timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly registry: ClientRegistry<M>,
    private readonly interval: number,
    private readonly timeout: number,
    private readonly close: (clientId: string, code: number, reason: string) => void,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.sweep(), this.interval);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** One pass; returns how many clients were closed. */
  sweep(now: number = Date.now()): number {
    const stale: string[] = [];
    for (const client of this.registry.clients.values()) {
      if (client.state === WebSocketClientStates.AUTHENTICATED && now - client.lastActivity > this.timeout) {
        stale.push(client.id);
      }
    }
    for (const id of stale) this.close(id, WebSocketCloseCodes.HEARTBEAT_TIMEOUT, 'Heartbeat timeout');
    return stale.length;
  }
}
