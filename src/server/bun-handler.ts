import { WebSocketDefaults } from '../common/constants.ts';
import type { IBunWebSocketConfig, IBunWebSocketHandler, IWebSocket } from '../common/types.ts';

/** Bun settings with the documented defaults filled in. */
export function resolveBunConfig(config: IBunWebSocketConfig | undefined): IBunWebSocketConfig {
  const resolved: IBunWebSocketConfig = {
    maxPayloadLength: WebSocketDefaults.MAX_PAYLOAD_LENGTH,
    idleTimeout: WebSocketDefaults.IDLE_TIMEOUT,
    backpressureLimit: WebSocketDefaults.BACKPRESSURE_LIMIT,
    sendPings: WebSocketDefaults.SEND_PINGS,
    publishToSelf: WebSocketDefaults.PUBLISH_TO_SELF,
  };
  for (const [key, value] of Object.entries(config ?? {})) {
    if (value !== undefined) (resolved as Record<string, unknown>)[key] = value;
  }
  return resolved;
}

export interface ILifecycleTarget {
  onClientConnect(opts: { clientId: string; socket: IWebSocket }): void;
  onClientMessage(opts: { clientId: string; raw: unknown; socket?: IWebSocket }): void;
  onClientDisconnect(opts: { clientId: string; socket?: IWebSocket; code?: number }): void;
  onClientDrain(opts: { clientId: string; socket?: IWebSocket }): void;
}

/** The Bun adapter: maps Bun's socket callbacks onto the helper's lifecycle entry points. */
export function createBunWebSocketHandler(
  target: ILifecycleTarget,
  config: IBunWebSocketConfig,
  newClientId: () => string,
): IBunWebSocketHandler {
  const idOf = (socket: IWebSocket): string => (socket.data as { clientId: string }).clientId;
  return {
    ...config,
    open: (socket) => {
      const data = socket.data as { clientId?: unknown } | undefined;
      if (!data || typeof data.clientId !== 'string' || data.clientId.length === 0) {
        // The upgrade did not attach an id: give the socket one so it can still be served.
        const id = newClientId();
        if (data && typeof data === 'object') (data as { clientId: string }).clientId = id;
        else (socket as { data: unknown }).data = { clientId: id };
      }
      target.onClientConnect({ clientId: idOf(socket), socket });
    },
    // The socket goes along so a stale socket can never act for a newer client with the same id.
    message: (socket, message) => target.onClientMessage({ clientId: idOf(socket), raw: message, socket }),
    close: (socket, code) => target.onClientDisconnect({ clientId: idOf(socket), socket, code }),
    drain: (socket) => target.onClientDrain({ clientId: idOf(socket), socket }),
  };
}
