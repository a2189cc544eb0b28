// Which web pages may open a WebSocket to this server. Browsers attach cookies to a
// cross-site WebSocket upgrade and apply no CORS to it, so without this check any
// page a logged-in user visits could open a socket in that user's name (Cross-Site
// WebSocket Hijacking). The check looks only at the upgrade request's headers, so it
// runs before `server.upgrade()`, before any socket or client state exists.

/**
 * The origins allowed to open a WebSocket:
 * - `'same-origin'` (the default): the `Origin` header's host and port must equal the
 *   request's `Host` header, i.e. only pages served by this same host;
 * - `'*'`: every origin (say so explicitly, e.g. for a public API meant for any site);
 * - a list of exact origins (`'https://app.example.com'`, `'http://localhost:5173'`) and
 *   wildcard subdomains (`'https://*.example.com'` matches any subdomain at any depth,
 *   not `https://example.com` itself; the scheme and port must match).
 *
 * Requests without an `Origin` header are always allowed: browsers always send it on a
 * WebSocket upgrade, so its absence means a non-browser client (a server, a CLI, a
 * mobile app), which could send any `Origin` it liked anyway and carries no victim's cookies.
 */
export type TAllowedOrigins = 'same-origin' | '*' | readonly string[];

/** Tells whether an upgrade request's `Origin` is allowed. Build once, call per request. */
export type TOriginCheck = (request: Request) => boolean;

const PREFIX = '[allowedOrigins]';

interface IOriginPattern extends IParsedOrigin {
  /** For a wildcard, `host` is the suffix every matching host ends with (`.example.com`). */
  wildcard: boolean;
}

/**
 * Compiles `allowedOrigins` into a check. Throws a clear error for an entry that is not
 * an origin (`scheme://host[:port]`, optionally `scheme://*.host[:port]`), so a typo fails
 * at start-up instead of refusing every browser.
 */
export function createOriginCheck(allowedOrigins: TAllowedOrigins = 'same-origin'): TOriginCheck {
  if (allowedOrigins === '*') return () => true;
  if (allowedOrigins === 'same-origin') {
    return (request) => {
      const origin = request.headers.get('origin');
      if (origin === null) return true;
      const parsed = parseOrigin(origin);
      const host = request.headers.get('host');
      return parsed !== undefined && host !== null && sameHost(parsed, host);
    };
  }
  if (!Array.isArray(allowedOrigins)) {
    throw new Error(
      `${PREFIX} must be 'same-origin', '*' or an array of origins, got ${JSON.stringify(allowedOrigins)}`,
    );
  }
  if (allowedOrigins.includes('*')) return () => true;
  const patterns = allowedOrigins.map(compilePattern);
  return (request) => {
    const origin = request.headers.get('origin');
    if (origin === null) return true;
    const parsed = parseOrigin(origin);
    return parsed !== undefined && patterns.some((pattern) => matches(pattern, parsed));
  };
}

/**
 * The same check for applications that route upgrades to `WebSocketServerHelper`
 * themselves: call it before `server.upgrade()` and answer 403 when it returns false.
 * (It compiles `allowedOrigins` on every call; keep a `createOriginCheck()` for hot paths.)
 */
export function isOriginAllowed(opts: { request: Request; allowedOrigins?: TAllowedOrigins }): boolean {
  return createOriginCheck(opts.allowedOrigins)(opts.request);
}

/** The 403 the component answers a refused upgrade with (no WebSocket is created). */
export function originRefusedResponse(): Response {
  return new Response('Forbidden: this origin may not open a WebSocket here', {
    status: 403,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}

interface IParsedOrigin {
  scheme: string;
  host: string;
  port: string;
}

/** `scheme://host[:port]` with nothing after it; `null` (opaque origins) and junk give undefined. */
function parseOrigin(value: string): IParsedOrigin | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.host === '' || url.origin === 'null') return undefined;
  const scheme = url.protocol.slice(0, -1);
  return { scheme, host: url.hostname.toLowerCase(), port: url.port || defaultPort(scheme) };
}

function defaultPort(scheme: string): string {
  return scheme === 'https' || scheme === 'wss' ? '443' : '80';
}

/** `Host` is `name[:port]` (IPv6 as `[::1]:port`); without a port it is the origin scheme's default. */
function sameHost(origin: IParsedOrigin, hostHeader: string): boolean {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim().toLowerCase());
  if (!match) return false;
  const [, name, port] = match;
  return name === origin.host && (port ?? defaultPort(origin.scheme)) === origin.port;
}

/** `scheme://[*.]host[:port]`, an optional trailing slash and nothing else. */
const ORIGIN_ENTRY = /^([a-z][a-z0-9+.-]*:\/\/)(\*\.)?([^/?#*]+?)\/?$/i;

function compilePattern(entry: unknown): IOriginPattern {
  const shape = typeof entry === 'string' ? ORIGIN_ENTRY.exec(entry) : null;
  const parsed = shape ? parseOrigin(`${shape[1]}${shape[3]}`) : undefined;
  if (!shape || !parsed) {
    throw new Error(
      `${PREFIX} ${JSON.stringify(entry)} is not an origin: expected scheme://host[:port] or scheme://*.host[:port] with no path, e.g. 'https://app.example.com' or 'https://*.example.com'`,
    );
  }
  const wildcard = shape[2] !== undefined;
  return { ...parsed, host: wildcard ? `.${parsed.host}` : parsed.host, wildcard };
}

function matches(pattern: IOriginPattern, origin: IParsedOrigin): boolean {
  if (pattern.scheme !== origin.scheme || pattern.port !== origin.port) return false;
  return pattern.wildcard ? origin.host.endsWith(pattern.host) : origin.host === pattern.host;
}
