// The admin UI's authentication: the application's authorize(request) hook, or a sign-in with an
// admin key that sets a signed, HttpOnly session cookie. The browser never holds the key itself.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { parseCookies } from '../server/upgrade.ts';
import { type IAdminKey, type IResolvedAdminUiOptions, readAdminKeys } from './options.ts';

/** The session cookie's name; scoped to the admin path, HttpOnly, SameSite=Strict. */
export const ADMIN_SESSION_COOKIE = 'roomcast_admin';

const MAC_CONTEXT = 'roomcast-admin-session/v1';
/** Longest wait for the application's `authorize(request)` before the request is refused (ms). */
export const AUTHORIZE_TIMEOUT = 5_000;

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/** A short public name of a key (the start of its SHA-256): in the cookie and the default operator name. */
export function keyFingerprint(key: string): string {
  return sha256(key).toString('hex').slice(0, 16);
}

function operatorOf(entry: IAdminKey, fingerprint: string): string {
  return entry.operator ?? `key:${fingerprint.slice(0, 8)}`;
}

function mac(key: string, expires: number, fingerprint: string): string {
  return createHmac('sha256', key).update(`${MAC_CONTEXT}|${expires}|${fingerprint}`).digest('base64url');
}

function equalDigests(a: string, b: string): boolean {
  const left = sha256(a);
  const right = sha256(b);
  return timingSafeEqual(left, right);
}

export type TGateVerdict =
  | { operator: string; via: 'authorize' | 'session' }
  /** `reason` says what was missing: nothing presented (401) or a refusal by the hook (403). */
  | { operator?: undefined; reason: 'none' | 'refused' };

export class AdminGate {
  constructor(
    private readonly options: IResolvedAdminUiOptions,
    private readonly now: () => number = Date.now,
    private readonly authorizeTimeout = AUTHORIZE_TIMEOUT,
  ) {}

  /** Whether operators sign in with keys (a sign-in form is offered). */
  get hasKeys(): boolean {
    return this.options.keys !== undefined;
  }

  /**
   * Who is making `request`: the hook's answer first (when given), then the session cookie.
   * A hook that throws refuses (the error goes to `onError`).
   */
  async identify(request: Request, onError: (error: unknown) => void): Promise<TGateVerdict> {
    const { authorize } = this.options;
    let refused = false;
    if (authorize) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // A hook that never answers must not hold the request (nor its memory) forever.
        const answer = await Promise.race([
          authorize(request),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`adminUi.authorize did not answer within ${this.authorizeTimeout} ms`)),
              this.authorizeTimeout,
            );
          }),
        ]);
        if (answer === true) return { operator: 'operator', via: 'authorize' };
        if (typeof answer === 'string' && answer.length > 0)
          return { operator: answer.slice(0, 100), via: 'authorize' };
        refused = true;
      } catch (error) {
        onError(error);
        refused = true;
      } finally {
        clearTimeout(timer);
      }
    }
    const operator = this.hasKeys ? this.verifySession(readCookie(request, ADMIN_SESSION_COOKIE)) : undefined;
    if (operator !== undefined) return { operator, via: 'session' };
    return { reason: refused && !this.hasKeys ? 'refused' : 'none' };
  }

  /**
   * Checks a key typed into the sign-in form against every current key (each compared in
   * constant time, all of them every time). On a match: the operator and the session value.
   */
  signIn(candidate: string): { operator: string; session: string } | undefined {
    if (!this.options.keys) return undefined;
    let found: IAdminKey | undefined;
    for (const entry of readAdminKeys(this.options.keys)) {
      if (equalDigests(candidate, entry.key) && !found) found = entry;
    }
    if (!found) return undefined;
    const fingerprint = keyFingerprint(found.key);
    const expires = Math.floor((this.now() + this.options.sessionTtl) / 1000);
    return {
      operator: operatorOf(found, fingerprint),
      session: `v1.${expires}.${fingerprint}.${mac(found.key, expires, fingerprint)}`,
    };
  }

  /**
   * The operator of a session value, or undefined when it is malformed, expired, signed by a key
   * no longer in the list (rotation ends its sessions at once) or forged.
   */
  verifySession(value: string | undefined): string | undefined {
    if (!value || value.length > 200 || !this.options.keys) return undefined;
    const [version, expiresText, fingerprint, signature, extra] = value.split('.');
    if (version !== 'v1' || extra !== undefined || !expiresText || !fingerprint || !signature)
      return undefined;
    const expires = Number(expiresText);
    const nowSeconds = this.now() / 1000;
    if (!Number.isSafeInteger(expires) || expires <= nowSeconds) return undefined;
    if (expires > nowSeconds + this.options.sessionTtl / 1000 + 1) return undefined;
    let keys: IAdminKey[];
    try {
      keys = readAdminKeys(this.options.keys);
    } catch {
      return undefined;
    }
    for (const entry of keys) {
      if (keyFingerprint(entry.key) !== fingerprint) continue;
      if (equalDigests(signature, mac(entry.key, expires, fingerprint)))
        return operatorOf(entry, fingerprint);
    }
    return undefined;
  }

  /** The `Set-Cookie` value of a new session (or, without `session`, of its removal). */
  cookie(request: Request, session?: string): string {
    const secure = this.options.secureCookie ?? new URL(request.url).protocol === 'https:';
    const parts = [
      `${ADMIN_SESSION_COOKIE}=${session ?? ''}`,
      `Path=${this.options.path}`,
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${session ? Math.floor(this.options.sessionTtl / 1000) : 0}`,
    ];
    if (secure) parts.push('Secure');
    return parts.join('; ');
  }
}

/** One cookie's value from the request's `Cookie` header (bounded: a long header is not parsed). */
export function readCookie(request: Request, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (!header || header.length > 8_192) return undefined;
  return parseCookies(header)[name];
}
