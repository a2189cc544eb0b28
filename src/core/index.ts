// The `./core` entry point: the application base and the WebSocket component.

/**
 * The Hono-based application and the WebSocket component (Bun only).
 *
 * @packageDocumentation
 * @module roomcast/core
 */

export {
  BaseApplication,
  type IApplicationAddress,
  type IApplicationOptions,
  type IBindingTypes,
  type TComponentClass,
} from './application.ts';
export type { IComponent, IComponentStartContext } from './component.ts';
export { Binding, Container } from './container.ts';
export { type IShutdownSignalOptions, installShutdownSignals, type TShutdownSignal } from './signals.ts';
export { WebSocketComponent } from './websocket/component.ts';
export { WebSocketBindingKeys } from './websocket/keys.ts';
export type { IServerOptions, TClientIpFn, TConnectionRateFn } from './websocket/options.ts';
export { HELPER_OPTION_SOURCES } from './websocket/options.ts';
