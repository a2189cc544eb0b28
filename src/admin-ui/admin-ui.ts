// The admin UI's request handler: the gate, the page and its files, the sign-in form, and the
// HTTP API forwarded under `<path>/api` with every action rate-limited per operator and logged.

import { readFile } from 'node:fs/promises';
import { adaptLogger, logFields } from '../common/log.ts';
import type { ILogger } from '../common/types.ts';
import { ConnectionRateLimiter } from '../server/connection-rate.ts';
import { AdminGate } from './gate.ts';
import { jsonError, withSecurityHeaders } from './headers.ts';
import type { IResolvedAdminUiOptions } from './options.ts';

const PREFIX = '[AdminUi]';

/** Largest body the admin forwards to the API (the API applies its own, smaller, limits). */
export const ADMIN_MAX_BODY_BYTES = 256 * 1024;
const MAX_SIGN_IN_BYTES = 4 * 1024;
/** The header every changing API call must carry: a cross-site form or image cannot set it. */
export const ADMIN_ACTION_HEADER = 'x-roomcast-admin';

/** Where the HTTP API is reached: `request` already has the `<path>/api` prefix taken off. */
export type TAdminApiFetch = (request: Request) => Response | Promise<Response>;

export interface IAdminUiDeps {
  options: IResolvedAdminUiOptions;
  api: TAdminApiFetch;
  logger: ILogger;
  /** The address sign-in attempts are counted under. */
  clientAddress: (request: Request) => string | undefined;
}

interface IAssets {
  html: string;
  login: string;
  js: string;
  css: string;
}

/** The fields of an action's body that say what it acts on; anything else (payloads) is never logged. */
const LOGGED_FIELDS = [
  'room',
  'rooms',
  'userId',
  'clientId',
  'instanceId',
  'code',
  'reason',
  'event',
  'to',
] as const;

/** Reads the page's files once. They are plain files next to this module: no build step. */
async function loadAssets(): Promise<IAssets> {
  const read = (name: string) => readFile(new URL(`./assets/${name}`, import.meta.url), 'utf8');
  const [html, login, js, css] = await Promise.all([
    read('index.html'),
    read('login.html'),
    read('admin.js'),
    read('admin.css'),
  ]);
  return { html, login, js, css };
}

const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, name: string) =>
    name in values ? escapeHtml(values[name] as string) : whole,
  );
}

const textResponse = (status: number, body: string, type: string, headers?: Record<string, string>) =>
  new Response(body, { status, headers: { 'content-type': `${type}; charset=utf-8`, ...headers } });

/** Reads at most `limit` bytes of a body; undefined when it is longer. */
async function readBounded(request: Request, limit: number): Promise<Uint8Array | undefined> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limit) return undefined;
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** A cross-site request names another origin: refused for every request that changes something. */
function sameOrigin(request: Request): boolean {
  const origin = request.headers.get('origin');
  if (origin === null) return true; // not sent by a browser for this request: nothing to compare
  try {
    return new URL(origin).host === (request.headers.get('host') ?? new URL(request.url).host);
  } catch {
    return false;
  }
}

function summarize(body: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return {};
  }
  const fields: Record<string, unknown> = {};
  const pick = (source: unknown) => {
    if (typeof source !== 'object' || source === null) return;
    for (const name of LOGGED_FIELDS) {
      const value = (source as Record<string, unknown>)[name];
      if (value === undefined) continue;
      // The message's event name is logged as `messageEvent`: `event` names the log line itself.
      fields[name === 'event' ? 'messageEvent' : name] =
        typeof value === 'string' ? value.slice(0, 200) : Array.isArray(value) ? value.slice(0, 20) : value;
    }
  };
  pick(parsed);
  // A batch: how many commands, and what the first acts on.
  const commands = (parsed as { commands?: unknown })?.commands;
  if (Array.isArray(commands)) {
    fields.commands = commands.length;
    pick(commands[0]);
  }
  return fields;
}

/**
 * Builds the admin UI's handler for requests under `options.path` (undefined for every other
 * path). Everything it answers carries the admin security headers (see headers.ts).
 */
export async function createAdminUi(
  deps: IAdminUiDeps,
): Promise<(request: Request, pathname: string) => Promise<Response> | undefined> {
  const { options, api, clientAddress } = deps;
  const log = adaptLogger(deps.logger);
  const assets = await loadAssets();
  const gate = new AdminGate(options);
  const actions = new ConnectionRateLimiter({ ...options.actionRate, maxTrackedIps: 1_000 }, PREFIX);
  const signIns = new ConnectionRateLimiter({ ...options.signInRate, maxTrackedIps: 10_000 }, PREFIX);
  const base = options.path;
  const apiPrefix = `${base}/api`;

  const loginPage = (status: number, message: string) =>
    textResponse(status, fill(assets.login, { BASE: base, MESSAGE: message }), 'text/html');

  const refuse = (request: Request, verdict: { reason: 'none' | 'refused' }, isApi: boolean): Response => {
    if (isApi) {
      return verdict.reason === 'refused'
        ? jsonError(403, 'FORBIDDEN', 'not allowed to use the admin API')
        : jsonError(401, 'UNAUTHORIZED', 'sign in to the admin UI first');
    }
    if (verdict.reason === 'refused' || !gate.hasKeys) return textResponse(403, 'Forbidden', 'text/plain');
    return loginPage(401, request.method === 'POST' ? 'That key was not accepted.' : '');
  };

  const onHookError = (error: unknown) =>
    log.error(`${PREFIX} adminUi.authorize failed; request refused`, logFields({ error }));

  async function signIn(request: Request): Promise<Response> {
    const ip = clientAddress(request) ?? 'unknown';
    if (!sameOrigin(request)) return textResponse(403, 'Forbidden: cross-site sign-in', 'text/plain');
    if (!signIns.allow(ip)) {
      log.warn(`${PREFIX} sign-in attempts over the rate from ${ip}`, logFields({ ip }));
      return textResponse(429, 'Too Many Requests', 'text/plain', { 'retry-after': '5' });
    }
    const body = await readBounded(request, MAX_SIGN_IN_BYTES);
    const key = body ? new URLSearchParams(new TextDecoder().decode(body)).get('key') : null;
    let result: ReturnType<AdminGate['signIn']>;
    try {
      result = key ? gate.signIn(key) : undefined;
    } catch (error) {
      log.error(`${PREFIX} adminUi.keys could not be read; sign-in refused`, logFields({ error }));
      result = undefined;
    }
    if (!result) {
      log.warn(`${PREFIX} admin sign-in refused`, logFields({ ip, event: 'admin.sign-in.refused' }));
      return loginPage(401, 'That key was not accepted.');
    }
    log.info(
      `${PREFIX} operator ${result.operator} signed in`,
      logFields({ operator: result.operator, ip, event: 'admin.sign-in' }),
    );
    return new Response(null, {
      status: 303,
      headers: { location: `${base}/`, 'set-cookie': gate.cookie(request, result.session) },
    });
  }

  async function forward(request: Request, operator: string, rest: string): Promise<Response> {
    const url = new URL(request.url);
    const target = `${url.origin}${rest}${url.search}`;
    // The API authenticates by its own rules; the admin session and header stay here.
    const headers = new Headers(request.headers);
    for (const name of ['cookie', 'authorization', ADMIN_ACTION_HEADER]) headers.delete(name);
    const reading = request.method === 'GET' || request.method === 'HEAD';
    if (reading) return api(new Request(target, { method: request.method, headers }));

    if (request.headers.get(ADMIN_ACTION_HEADER) !== '1' || !sameOrigin(request)) {
      return jsonError(
        403,
        'FORBIDDEN',
        `admin actions must be same-origin and carry ${ADMIN_ACTION_HEADER}: 1`,
      );
    }
    if (!actions.allow(operator)) {
      log.warn(
        `${PREFIX} admin action refused: ${operator} is over the action rate`,
        logFields({ operator, action: `${request.method} ${rest}`, event: 'admin.action.limited' }),
      );
      return jsonError(429, 'RATE_LIMITED', 'too many admin actions; wait a moment', { 'retry-after': '1' });
    }
    const body = await readBounded(request, ADMIN_MAX_BODY_BYTES);
    if (!body)
      return jsonError(413, 'PAYLOAD_TOO_LARGE', `admin actions carry at most ${ADMIN_MAX_BODY_BYTES} bytes`);
    const answer = await api(
      new Request(target, { method: request.method, headers, body: body as BodyInit }),
    );
    const fields = {
      ...summarize(body),
      operator,
      action: `${request.method} ${rest}`,
      status: answer.status,
      event: 'admin.action',
    };
    log.info(`${PREFIX} ${operator}: ${request.method} ${rest} -> ${answer.status}`, logFields(fields));
    return answer;
  }

  async function handle(request: Request, pathname: string): Promise<Response> {
    if (pathname === base) {
      return new Response(null, { status: 308, headers: { location: `${base}/` } });
    }
    const method = request.method;
    const sub = pathname.slice(base.length);
    if (sub === '/admin.css') {
      return method === 'GET' || method === 'HEAD'
        ? textResponse(200, assets.css, 'text/css')
        : textResponse(405, 'Method Not Allowed', 'text/plain', { allow: 'GET, HEAD' });
    }
    if (sub === '/login') {
      // Without keys there is nothing to sign in with: the application's hook is the only gate.
      if (!gate.hasKeys) return textResponse(403, 'Forbidden', 'text/plain');
      return method === 'POST'
        ? signIn(request)
        : new Response(null, { status: 303, headers: { location: `${base}/` } });
    }
    if (sub === '/logout') {
      if (method !== 'POST' || !sameOrigin(request))
        return textResponse(405, 'Method Not Allowed', 'text/plain');
      return new Response(null, {
        status: 303,
        headers: { location: `${base}/`, 'set-cookie': gate.cookie(request) },
      });
    }

    const isApi = pathname === apiPrefix || pathname.startsWith(`${apiPrefix}/`);
    const verdict = await gate.identify(request, onHookError);
    if (verdict.operator === undefined) return refuse(request, verdict, isApi);
    if (isApi) return forward(request, verdict.operator, pathname.slice(apiPrefix.length) || '/');

    if (method !== 'GET' && method !== 'HEAD') {
      return textResponse(405, 'Method Not Allowed', 'text/plain', { allow: 'GET, HEAD' });
    }
    if (sub === '/') {
      return textResponse(
        200,
        fill(assets.html, {
          BASE: base,
          API: apiPrefix,
          REFRESH: String(options.refreshInterval),
          OPERATOR: verdict.operator,
          SIGN_OUT: gate.hasKeys && verdict.via === 'session' ? 'yes' : 'no',
        }),
        'text/html',
      );
    }
    if (sub === '/admin.js') return textResponse(200, assets.js, 'text/javascript');
    return textResponse(404, 'Not Found', 'text/plain');
  }

  return (request, pathname) => {
    if (pathname !== base && !pathname.startsWith(`${base}/`)) return undefined;
    return handle(request, pathname).then(withSecurityHeaders, (error: unknown) => {
      log.error(`${PREFIX} request failed`, logFields({ error, path: pathname }));
      return withSecurityHeaders(jsonError(500, 'INTERNAL', 'the admin request failed'));
    });
  };
}
