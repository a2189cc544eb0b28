import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { IConnectionInfo } from '../bus/commands.ts';
import { adaptLogger } from '../common/log.ts';
import { createConsoleLogger } from '../common/logger.ts';
import type { ILogger } from '../common/types.ts';
import type { IWebSocketEmitterOptions } from '../emitter/options.ts';
import { WebSocketEmitter } from '../emitter/websocket-emitter.ts';
import { fleetTopRooms, readFleet } from '../fleet/reader.ts';
import { ROOMCAST_VERSION } from '../fleet/version.ts';
import { RedisPresenceStore } from '../presence/redis-store.ts';
import { type IPresenceMember, presenceStats } from '../presence/types.ts';
import { ConnectionRateLimiter } from '../server/connection-rate.ts';
import { ApiKeyCheck, type THttpApiKeys } from './auth.ts';
import { errorBody, HttpApiError, toHttpApiError } from './errors.ts';
import { routes, writeRoutes } from './routes.ts';
import type { TBatchItem } from './schemas.ts';

const PREFIX = '[HttpApi]';
export const HTTP_API_DEFAULTS = Object.freeze({
  maxBodyBytes: 256 * 1024,
  maxBatch: 100,
  rate: Object.freeze({ perSecond: 100, burst: 200 }),
  presenceLimit: 1_000,
  topRooms: 10,
});
/** The largest `maxBatch` accepted. */
export const MAX_BATCH = 1_000;

export interface IHttpApiOptions
  extends Pick<
    IWebSocketEmitterOptions,
    | 'redisConnection'
    | 'historyFn'
    | 'busSecret'
    | 'maxEnvelopeBytes'
    | 'redisReadyTimeout'
    | 'redisCommandTimeout'
    | 'structuredLogs'
  > {
  /**
   * The API keys (`Authorization: Bearer <key>`), each at least 16 characters: a list, or a
   * function read on every request, which rotates them without a restart.
   */
  keys: THttpApiKeys;
  /** Largest request body, bytes (413 `PAYLOAD_TOO_LARGE` past it). Default 256 KiB. */
  maxBodyBytes?: number;
  /** Most requests in one `POST /batch` (`BATCH_TOO_LARGE` past it). Default 100, at most 1 000. */
  maxBatch?: number;
  /**
   * Requests per key: a token bucket of `burst` refilled at `perSecond` (a batch takes one token
   * per request in it); 429 `RATE_LIMITED` when empty. Default `{ perSecond: 100, burst: 200 }`; `false`: none.
   */
  rate?: { perSecond?: number; burst?: number } | false;
  /**
   * Where the API is mounted (`/api` when the application routes it there): written into the
   * OpenAPI document's `servers`. Default `/`.
   */
  basePath?: string;
  /**
   * Describes a connection's, or a user's connections (`GET /connections`). Redis alone cannot
   * answer it: an instance's `helper.connections` asks every instance over the command bus. The
   * admin UI's API and `HttpApiComponent` get it; without it the route answers 501 `NOT_AVAILABLE`.
   */
  connections?: (target: { clientId?: string; userId?: string }) => Promise<IHttpApiConnections>;
  /** Told of every write that succeeded (op, the key's id, its target): an audit trail. */
  onAction?: (entry: IHttpApiAction) => void;
  logger?: ILogger;
}

/** What `GET /connections` answers (`IInspectResult` of the helper). */
export interface IHttpApiConnections {
  connections: IConnectionInfo[];
  instances: number;
  complete: boolean;
}

/** One write done through the API, as `onAction` sees it (no payload). */
export interface IHttpApiAction {
  op: TBatchItem['op'];
  /** A 16-hex-digit id of the key used (a digest prefix, never the key). */
  keyId: string;
  target: { room?: string; userId?: string; clientId?: string; rooms?: string[] };
}

export interface IHttpApi {
  /** The Hono app: mount it (`hono.route('/api', api.app)`) or serve `api.fetch`. */
  readonly app: OpenAPIHono<THttpApiEnv>;
  fetch(request: Request): Response | Promise<Response>;
  /** Connects Redis (bounded by `redisReadyTimeout`); requests before it answer 503. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The Hono environment of the API's app: the key id the request was made with. */
export type THttpApiEnv = { Variables: { keyId: string } };

/**
 * The HTTP server API: publishes, batches, presence, history and the server commands through
 * a `WebSocketEmitter`, and the fleet from the registry. Needs only Redis (see docs/http-api.md).
 */
export function createHttpApi(opts: IHttpApiOptions): IHttpApi {
  if (!opts || typeof opts !== 'object') throw new Error(`${PREFIX} options are required`);
  const keys = new ApiKeyCheck(opts.keys);
  const maxBodyBytes = positiveInteger('maxBodyBytes', opts.maxBodyBytes, HTTP_API_DEFAULTS.maxBodyBytes);
  const maxBatch = positiveInteger('maxBatch', opts.maxBatch, HTTP_API_DEFAULTS.maxBatch);
  if (maxBatch > MAX_BATCH) throw new Error(`${PREFIX} maxBatch must be at most ${MAX_BATCH}`);
  const rate =
    opts.rate === false
      ? undefined
      : new ConnectionRateLimiter(
          { ...HTTP_API_DEFAULTS.rate, ...opts.rate, maxTrackedIps: 1_000 },
          `${PREFIX} rate:`,
        );
  const basePath = opts.basePath ?? '/';
  if (typeof basePath !== 'string' || !basePath.startsWith('/'))
    throw new Error(`${PREFIX} basePath must start with "/"`);
  const logger = adaptLogger(opts.logger ?? createConsoleLogger('HttpApi'), {
    structured: opts.structuredLogs,
  });

  const emitter = new WebSocketEmitter({
    identifier: 'HttpApi',
    redisConnection: opts.redisConnection,
    historyFn: opts.historyFn,
    busSecret: opts.busSecret,
    maxEnvelopeBytes: opts.maxEnvelopeBytes,
    redisReadyTimeout: opts.redisReadyTimeout,
    redisCommandTimeout: opts.redisCommandTimeout,
    logger,
  });
  const redis = () => emitter.readyConnection();
  // Only `list` is used: presence is read as the instances wrote it.
  const presence = new RedisPresenceStore({ client: redis, serverId: 'http-api', ttl: 1 });
  // A room's presence is read whole (one HGETALL), so requests for the same room that arrive while
  // a read is on its way share it: the admin page asks for a room's members and its stats at once,
  // and at 20,000 members each read costs Redis and this process tens of milliseconds.
  const reading = new Map<string, Promise<IPresenceMember[]>>();
  const presenceOf = (room: string): Promise<IPresenceMember[]> => {
    let read = reading.get(room);
    if (!read) {
      read = presence
        .list(room)
        .then((members) => members.sort(byClientId))
        .finally(() => reading.delete(room));
      reading.set(room, read);
    }
    return read;
  };

  /** The writes, shared by their routes and by the batch. */
  const writes: {
    [K in TBatchItem['op']]: (body: Extract<TBatchItem, { op: K }>['body']) => Promise<unknown>;
  } = {
    publishRoom: async (b) => ({ position: (await emitter.toRoom(b)) ?? null }),
    publishUser: (b) => emitter.toUser(b).then(() => DONE),
    publishClient: (b) => emitter.toClient(b).then(() => DONE),
    broadcast: (b) => emitter.broadcast(b).then(() => DONE),
    disconnect: (b) => emitter.disconnect(b),
    join: (b) => emitter.joinRooms(b),
    leave: (b) => emitter.leaveRooms(b),
    removeHistory: (b) => emitter.removeHistory(b).then(() => DONE),
  };
  const run = async (item: TBatchItem, keyId: string): Promise<unknown> => {
    const result = await (writes[item.op] as (body: unknown) => Promise<unknown>)(item.body);
    if (opts.onAction) {
      const b = item.body as IHttpApiAction['target'];
      const target: IHttpApiAction['target'] = {};
      for (const key of ['room', 'userId', 'clientId', 'rooms'] as const)
        if (b[key] !== undefined) Object.assign(target, { [key]: b[key] });
      try {
        opts.onAction({ op: item.op, keyId, target });
      } catch (error) {
        logger.warn(`${PREFIX} onAction threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return result;
  };

  const app = new OpenAPIHono<THttpApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new HttpApiError('INVALID_REQUEST', describeIssues(result.error.issues));
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of the API keys',
  });
  // Registered before the key check: the document is served without a key.
  app.doc('/openapi.json', {
    openapi: '3.0.3',
    info: {
      title: 'roomcast HTTP API',
      version: ROOMCAST_VERSION,
      description:
        'Publish, presence, history, server commands and the fleet of a roomcast deployment. See docs/http-api.md.',
    },
    servers: [{ url: basePath }],
  });
  app.use('*', async (c, next) => {
    c.header('cache-control', 'no-store');
    c.header('x-content-type-options', 'nosniff');
    // JSON only: nothing to run or frame, wherever a browser is pointed at it.
    c.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    const keyId = keys.check(c.req.header('authorization'));
    if (keyId === undefined)
      throw new HttpApiError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)', {
        'www-authenticate': 'Bearer',
      });
    if (rate && !rate.allow(keyId)) throw rateLimited();
    c.set('keyId', keyId);
    await next();
  });
  app.use(
    '*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new HttpApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${maxBodyBytes} bytes`);
      },
    }),
  );

  app.openapi(routes.instances, async (c) => {
    const instances = await readFleet(redis(), c.req.valid('query').limit);
    const totals = { connections: 0, authenticated: 0, instances: instances.length };
    for (const instance of instances) {
      totals.connections += instance.connections;
      totals.authenticated += instance.authenticated;
    }
    return c.json({ instances, totals }, 200);
  });
  app.openapi(routes.topRooms, async (c) => {
    const instances = await readFleet(redis());
    const limit = c.req.valid('query').limit ?? HTTP_API_DEFAULTS.topRooms;
    return c.json({ rooms: fleetTopRooms(instances, limit), instances: instances.length }, 200);
  });
  app.openapi(routes.presence, async (c) => {
    const { room, limit } = c.req.valid('query');
    const members = await presenceOf(room);
    return c.json(
      { room, total: members.length, members: members.slice(0, limit ?? HTTP_API_DEFAULTS.presenceLimit) },
      200,
    );
  });
  app.openapi(routes.presenceStats, async (c) => {
    const { room } = c.req.valid('query');
    return c.json({ room, ...presenceStats(await presenceOf(room)) }, 200);
  });
  app.openapi(routes.history, async (c) => {
    const q = c.req.valid('query');
    const since =
      q.sinceOffset !== undefined && q.sinceEpoch !== undefined
        ? { offset: q.sinceOffset, epoch: q.sinceEpoch }
        : undefined;
    const result = await emitter.history({
      room: q.room,
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(q.reverse !== undefined ? { reverse: q.reverse === 'true' } : {}),
      ...(since ? { since } : {}),
    });
    return c.json(result, 200);
  });
  // Every write route runs its batch operation; the route's schema validated the body.
  for (const op of Object.keys(writeRoutes) as TBatchItem['op'][]) {
    // One handler for all: typed as one of them (the answers differ only in their JSON shape).
    const route = writeRoutes[op] as typeof writeRoutes.publishUser;
    app.openapi(route, async (c) =>
      c.json(
        (await run({ op, body: c.req.valid('json') } as TBatchItem, c.get('keyId'))) as { done: true },
        200,
      ),
    );
  }
  app.openapi(routes.connections, async (c) => {
    if (!opts.connections) {
      throw new HttpApiError(
        'NOT_AVAILABLE',
        'this API cannot list connections: it was not given connections() (the admin UI mounted in an instance is)',
      );
    }
    const { clientId, userId } = c.req.valid('query');
    const found = await opts.connections(clientId !== undefined ? { clientId } : { userId });
    return c.json(
      { connections: found.connections, instances: found.instances, complete: found.complete },
      200,
    );
  });
  app.openapi(routes.batch, async (c) => {
    const { requests } = c.req.valid('json');
    if (requests.length > maxBatch) {
      throw new HttpApiError(
        'BATCH_TOO_LARGE',
        `a batch holds at most ${maxBatch} requests, got ${requests.length}`,
      );
    }
    const keyId = c.get('keyId');
    // The request took one token; each further item takes one more.
    if (rate) for (let n = 1; n < requests.length; n++) if (!rate.allow(keyId)) throw rateLimited();
    const results: Array<
      { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } }
    > = [];
    for (const item of requests) {
      try {
        results.push({ ok: true, result: await run(item, keyId) });
      } catch (error) {
        results.push({ ok: false, ...errorBody(...codeAndMessage(toHttpApiError(error))) });
      }
    }
    return c.json({ results }, 200);
  });

  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404));
  app.onError((error, c) => {
    let refusal: HttpApiError;
    if (error instanceof HTTPException) {
      refusal =
        error.status === 413
          ? new HttpApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${maxBodyBytes} bytes`)
          : error.status === 400
            ? new HttpApiError('INVALID_JSON', 'the body is not valid JSON')
            : new HttpApiError('INVALID_REQUEST', error.message);
    } else {
      refusal = toHttpApiError(error);
      if (refusal.code === 'INTERNAL')
        logger.error(
          `${PREFIX} ${c.req.method} ${c.req.path} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
    }
    for (const [name, value] of Object.entries(refusal.headers ?? {})) c.header(name, value);
    c.header('cache-control', 'no-store');
    return c.json(errorBody(refusal.code, refusal.message), refusal.status as 400);
  });

  return {
    app,
    fetch: (request) => app.fetch(request),
    start: () => emitter.configure(),
    stop: () => emitter.shutdown(),
  };
}

const DONE = Object.freeze({ done: true as const });

const byClientId = (a: IPresenceMember, b: IPresenceMember) =>
  a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0;

function rateLimited(): HttpApiError {
  return new HttpApiError('RATE_LIMITED', 'too many requests for this key', { 'retry-after': '1' });
}

function codeAndMessage(error: HttpApiError): [HttpApiError['code'], string] {
  return [error.code, error.message];
}

/** The schema's complaints, as one line: `path: message; ...` (at most five). */
function describeIssues(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
): string {
  const parts = issues
    .slice(0, 5)
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)'}: ${issue.message}`,
    );
  return parts.join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '');
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${PREFIX} ${name} must be a positive integer`);
  }
  return value;
}
