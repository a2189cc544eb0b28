// The upgrade request as authentication sees it. Built once per upgrade from what the request
// carries (headers copied, URL parsed once, cookies parsed on first read), kept on the socket's
// data until the `authenticate` frame arrives, then dropped: the request itself is never kept.
import type { IReadonlyHeaders, IWebSocketUpgrade } from '../common/types.ts';

/**
 * Parses a `Cookie` header into `name → value`. The first of two same-named cookies wins (the
 * browser sends the most specific path first); a value is URI-decoded when it decodes cleanly.
 */
export function parseCookies(header: string | null | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null);
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name.length === 0 || name in cookies) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      cookies[name] = value.includes('%') ? decodeURIComponent(value) : value;
    } catch {
      cookies[name] = value;
    }
  }
  return cookies;
}

class UpgradeView<D> implements IWebSocketUpgrade<D> {
  private parsed?: Readonly<Record<string, string>>;
  constructor(
    readonly headers: IReadonlyHeaders,
    readonly url: URL,
    readonly address: string | undefined,
    readonly data: D | undefined,
  ) {}
  get cookies(): Readonly<Record<string, string>> {
    this.parsed ??= Object.freeze(parseCookies(this.headers.get('cookie')));
    return this.parsed;
  }
  get query(): URLSearchParams {
    return this.url.searchParams;
  }
}

/** The view of `request` handed to `authenticateFn` (`url`: the request's URL, if parsed already). */
export function createUpgradeView<D = unknown>(opts: {
  request: Request;
  url?: URL;
  address: string | undefined;
  data?: D;
}): IWebSocketUpgrade<D> {
  return new UpgradeView<D>(
    new Headers(opts.request.headers),
    opts.url ?? new URL(opts.request.url),
    opts.address,
    opts.data,
  );
}
