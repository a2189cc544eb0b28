// Liveness and readiness endpoints for load balancers and orchestrators.

export interface IReadiness {
  ready: boolean;
  reasons: string[];
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });

/**
 * Answers `GET`/`HEAD` on the liveness path (200 while the process serves
 * requests) and on the readiness path (200 when `readiness()` says ready, 503
 * with the reasons otherwise); `undefined` for every other request.
 */
export function createHealthResponder(opts: {
  livenessPath: string | false;
  readinessPath: string | false;
  readiness: () => IReadiness;
}): (request: Request, pathname: string) => Response | undefined {
  const { livenessPath, readinessPath, readiness } = opts;
  return (request, pathname) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
    if (pathname === livenessPath) return json(200, { status: 'ok' });
    if (pathname === readinessPath) {
      const state = readiness();
      return state.ready
        ? json(200, { status: 'ready' })
        : json(503, { status: 'not ready', reasons: state.reasons });
    }
    return undefined;
  };
}
