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
export { HttpApiBindingKeys, HttpApiComponent, type IHttpApiComponentOptions } from './component.ts';
export { HTTP_API_ERROR_CODES, HttpApiErrorCodes, type THttpApiErrorCode } from './errors.ts';
export { serveOnNode } from './node-server.ts';
