// The security headers of every answer under the admin path: the page cannot be framed, runs only
// the script file it is served with (no inline script, no eval), and nothing is cached.

export const ADMIN_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['content-security-policy', ADMIN_CSP],
  ['x-frame-options', 'DENY'],
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'same-origin'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['cache-control', 'no-store'],
];

/** Sets the admin security headers on `response` (a copy when its headers are immutable). */
export function withSecurityHeaders(response: Response): Response {
  let target = response;
  try {
    for (const [name, value] of SECURITY_HEADERS) target.headers.set(name, value);
  } catch {
    target = new Response(response.body, response);
    for (const [name, value] of SECURITY_HEADERS) target.headers.set(name, value);
  }
  return target;
}

/** A JSON answer in the shape of the HTTP API's errors: `{ error: { code, message } }`. */
export function jsonError(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}
