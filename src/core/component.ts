import type { Server } from 'bun';
import type { Hono } from 'hono';
import type { ValueOrPromise } from '../common/types.ts';

/** What a component gets once the application's Bun server is listening. */
export interface IComponentStartContext {
  server: Server<unknown>;
  hono: Hono;
}

/**
 * A unit of functionality an application registers with `component()`. Every
 * hook is optional; the application calls them in this order:
 * `configure()` (all components) → server listens → `start()` (all components)
 * → … → `stop()` (reverse order).
 */
export interface IComponent {
  /** Before the server listens: read bindings and throw to refuse a bad configuration. */
  configure?(): ValueOrPromise<void>;
  /** Once the server listens: attach to it. */
  start?(context: IComponentStartContext): ValueOrPromise<void>;
  /** On application stop: release sockets, timers and connections. */
  stop?(): ValueOrPromise<void>;
}
