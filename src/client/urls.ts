import type { IUrlContext, TUrlSource } from './types.ts';

/** Throws the SDK's misconfiguration error (shared by the option checks). */
export function fail(message: string): never {
  throw new TypeError(`[roomcast] ${message}`);
}

/** Absolute ws:/wss: URL; http(s) is mapped to ws(s) and, in a browser, relative URLs resolve against the page. */
export function resolveUrl(url: unknown): string {
  let parsed: URL | undefined;
  if (typeof url === 'string' || url instanceof URL) {
    try {
      parsed = new URL(url, globalThis.location?.href);
    } catch {}
  }
  if (!parsed) return fail(`url must be an absolute ws:// or wss:// URL, got ${String(url)}`);
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
    parsed.protocol = parsed.protocol === 'http:' ? 'ws:' : 'wss:';
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    fail(`url must use ws:// or wss://, got ${parsed.protocol}`);
  }
  // WebSocket refuses URLs with a fragment.
  parsed.hash = '';
  return parsed.href;
}

export interface IUrlPicker {
  /** What `client.url` shows before the first attempt ('' for a function, which is only called per attempt). */
  initial: string;
  /** The URL of one attempt; throws a TypeError when a function gives a bad one. */
  pick(context: IUrlContext): string;
}

/** Validates the URL source up front (a list entirely), so a typo fails in the constructor. */
export function urlPicker(source: TUrlSource): IUrlPicker {
  if (typeof source === 'function') {
    return { initial: '', pick: (context) => resolveUrl(source(context)) };
  }
  if (Array.isArray(source)) {
    if (source.length === 0) fail('url list must not be empty');
    const urls = source.map(resolveUrl);
    return { initial: urls[0]!, pick: ({ attempt }) => urls[attempt % urls.length]! };
  }
  const url = resolveUrl(source);
  return { initial: url, pick: () => url };
}
