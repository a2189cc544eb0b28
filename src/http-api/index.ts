// The `./http-api` entry point: the HTTP server API (needs the optional peers @hono/zod-openapi and zod).

/**
 * The HTTP server API: publish, presence, history, server commands and the fleet over HTTP + JSON,
 * needing only Redis (see docs/http-api.md). Needs the optional peer dependencies
 * `@hono/zod-openapi` and `zod`.
 *
 * @packageDocumentation
 * @module roomcast/http-api
 */

export {
  HttpApiBindingKeys,
  HttpApiComponent,
  type IHttpApiComponentOptions,
} from '../core/http-api/component.ts';
export {
  createHttpApi,
  HTTP_API_DEFAULTS,
  type IHttpApi,
  type IHttpApiAction,
  type IHttpApiConnections,
  type IHttpApiOptions,
  MAX_BATCH,
  type THttpApiEnv,
} from './app.ts';
export { MIN_API_KEY_LENGTH, type THttpApiKeys } from './auth.ts';
export { HTTP_API_ERROR_CODES, HttpApiErrorCodes, type THttpApiErrorCode } from './errors.ts';
export { serveOnNode } from './node-server.ts';
