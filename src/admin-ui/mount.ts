// The admin UI as the WebSocket component mounts it: the page and its gate (admin-ui.ts) in front
// of an HTTP API of its own (src/http-api), reached only through the gate.

import { randomBytes } from 'node:crypto';
import type { ILogger, IRedisConnection } from '../common/types.ts';
import type { THistoryFn } from '../history/types.ts';
import type { IHttpApi } from '../http-api/app.ts';
import type { IInspectResult } from '../server/server-commands.ts';
import { createAdminUi } from './admin-ui.ts';
import type { IResolvedAdminUiOptions } from './options.ts';

export interface IAdminMountDeps {
  options: IResolvedAdminUiOptions;
  redisConnection: IRedisConnection;
  /** The instance's `helper.connections`: the API's `GET /connections`. */
  connections: (target: { clientId?: string; userId?: string }) => Promise<IInspectResult>;
  historyFn?: THistoryFn;
  busSecret?: string | string[];
  maxEnvelopeBytes?: number;
  logger: ILogger;
  clientAddress: (request: Request) => string | undefined;
}

export interface IAdminMount {
  handle: (request: Request, pathname: string) => Promise<Response> | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the admin UI's own HTTP API (its Redis connection included) and the page in front of it.
 * The API is given a key made here, at random, for this process only: the gate adds it to the
 * requests it lets through, so the API is reachable only through the gate, and the key is never
 * sent to a browser or written anywhere.
 */
export async function mountAdminUi(deps: IAdminMountDeps): Promise<IAdminMount> {
  let createHttpApi: typeof import('../http-api/app.ts').createHttpApi;
  try {
    ({ createHttpApi } = await import('../http-api/app.ts'));
  } catch (error) {
    throw new Error(
      `[AdminUi] the admin UI needs the HTTP API's optional dependencies: npm install @hono/zod-openapi zod (${(error as Error).message})`,
    );
  }
  const internalKey = randomBytes(32).toString('base64url');
  const api: IHttpApi = createHttpApi({
    redisConnection: deps.redisConnection,
    keys: [internalKey],
    historyFn: deps.historyFn,
    busSecret: deps.busSecret,
    maxEnvelopeBytes: deps.maxEnvelopeBytes,
    connections: deps.connections,
    // Every operator's requests share this key's bucket; each operator's actions have their own.
    rate: { perSecond: 50, burst: 100 },
    logger: deps.logger,
  });
  await api.start();
  const authorization = `Bearer ${internalKey}`;
  const handle = await createAdminUi({
    options: deps.options,
    logger: deps.logger,
    clientAddress: deps.clientAddress,
    api: (request) => {
      request.headers.set('authorization', authorization);
      return api.fetch(request);
    },
  });
  return { handle, stop: () => api.stop() };
}
