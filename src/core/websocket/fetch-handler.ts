import type { Server } from 'bun';
import { originRefusedResponse, type TOriginCheck } from '../../server/origin-policy.ts';
import { createUpgradeView } from '../../server/upgrade.ts';

export type TFetch = (request: Request, server: Server<unknown>) => Response | Promise<Response>;
export type TUpgradingFetch = (
  request: Request,
  server: Server<unknown>,
) => Response | undefined | Promise<Response | undefined>;

/**
 * Admission of an upgrade (the connection-rate check and the per-address cap): `true` lets it
 * through, a string lets it through and puts that address on the socket (`data.address`), a
 * `Response` refuses it.
 */
export type TAdmit = (
  request: Request,
  server: Server<unknown>,
) => true | string | Response | Promise<true | string | Response>;

/** True for a request that asks to switch to the WebSocket protocol. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get('upgrade')?.toLowerCase() === 'websocket';
}

/**
 * The server's fetch handler once the WebSocket component is attached: the
 * health and metrics paths are answered first; an upgrade request on `path` from an allowed
 * origin becomes a WebSocket whose `data.clientId` is a fresh UUID (the helper's
 * client id); one from another origin gets 403 and no socket, any gets 503
 * while draining, and one over its address's connection rate gets 429; every other request goes to `fallback` (the application's Hono router).
 */
export function createWebSocketFetchHandler(opts: {
  path: string;
  fallback: TFetch;
  originAllowed?: TOriginCheck;
  /** Told of each upgrade refused by the Origin check or a drain (for logs and metrics). */
  onRefused?: (request: Request, reason: 'origin' | 'draining') => void;
  /** Liveness / readiness answers; `undefined` passes the request on. */
  health?: (request: Request, pathname: string) => Response | undefined;
  /** The Prometheus scrape answer; `undefined` passes the request on. */
  metrics?: (request: Request, pathname: string) => Promise<Response> | undefined;
  /** The admin UI under its path; `undefined` passes the request on. */
  admin?: (request: Request, pathname: string) => Promise<Response> | undefined;
  /** False while draining: upgrades get 503 so the client tries another instance. */
  accepting?: () => boolean;
  /** Per-IP connection rate; checked last, so refused origins and drains never spend a token. */
  admit?: TAdmit;
  /** The client's address for `authenticateFn` when `admit` did not name one (`clientIpFn`). */
  clientAddress?: (request: Request, server: Server<unknown>) => string | undefined;
}): TUpgradingFetch {
  const {
    path,
    fallback,
    originAllowed,
    onRefused,
    health,
    metrics,
    admin,
    accepting,
    admit,
    clientAddress,
  } = opts;
  const upgrade = (
    request: Request,
    server: Server<unknown>,
    address?: true | string,
  ): Response | undefined => {
    // What authenticateFn sees of the request; the socket drops it at `authenticate`.
    const view = createUpgradeView({
      request,
      address: typeof address === 'string' ? address : clientAddress?.(request, server),
    });
    const data =
      typeof address === 'string'
        ? { clientId: crypto.randomUUID(), address, upgrade: view }
        : { clientId: crypto.randomUUID(), upgrade: view };
    // Bun answers the handshake itself; returning nothing tells it the request was taken.
    if (server.upgrade(request, { data })) return undefined;
    return new Response('WebSocket upgrade failed', { status: 500 });
  };
  return (request, server) => {
    const pathname = new URL(request.url).pathname;
    const answer = health?.(request, pathname) ?? metrics?.(request, pathname) ?? admin?.(request, pathname);
    if (answer) return answer;
    if (isWebSocketUpgrade(request) && pathname === path) {
      if (originAllowed && !originAllowed(request)) {
        onRefused?.(request, 'origin');
        return originRefusedResponse();
      }
      if (accepting && !accepting()) {
        onRefused?.(request, 'draining');
        return new Response('Service Unavailable: draining', {
          status: 503,
          headers: { 'retry-after': '1' },
        });
      }
      const admitted = admit ? admit(request, server) : true;
      if (admitted === true || typeof admitted === 'string') return upgrade(request, server, admitted);
      if (admitted instanceof Response) return admitted;
      return admitted.then((verdict) =>
        verdict instanceof Response ? verdict : upgrade(request, server, verdict),
      );
    }
    return fallback(request, server);
  };
}
