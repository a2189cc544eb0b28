import type { PrometheusMetrics } from '../../metrics/prometheus.ts';

/**
 * Answers `GET`/`HEAD` on the metrics path with the helper's Prometheus text
 * exposition; `undefined` for every other request (it goes on to the WebSocket
 * path or Hono).
 */
export function createMetricsResponder(opts: {
  path: string;
  metrics: () => PrometheusMetrics | undefined;
}): (request: Request, pathname: string) => Promise<Response> | undefined {
  const { path, metrics } = opts;
  return (request, pathname) => {
    if (pathname !== path || (request.method !== 'GET' && request.method !== 'HEAD')) return undefined;
    const source = metrics();
    if (!source) return undefined;
    return source.metrics().then(
      (text) =>
        new Response(request.method === 'HEAD' ? null : text, {
          headers: { 'content-type': source.contentType, 'cache-control': 'no-store' },
        }),
    );
  };
}
