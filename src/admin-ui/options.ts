// The admin UI's own options (the component's `adminUi`), their defaults and their checks.

/** One admin key, optionally naming the operator it signs in (shown in the page and in the action log). */
export interface IAdminKey {
  key: string;
  /** Who signs in with this key. Default: `key:<first 8 hex digits of the key's SHA-256>`. */
  operator?: string;
}

/** The admin keys: a list, or a function read again on every sign-in and request (rotation without restart). */
export type TAdminKeys = ReadonlyArray<string | IAdminKey> | (() => ReadonlyArray<string | IAdminKey>);

/**
 * The application's own gate, called on every request under the admin path: a non-empty string
 * (the operator's identity, logged with each action) or `true` (an unnamed operator) lets it in;
 * anything else (or a throw) does not. Typical: check the session of the application's own login,
 * or a header set by an authenticating proxy it trusts.
 */
export type TAdminAuthorizeFn = (
  request: Request,
) => string | boolean | null | undefined | Promise<string | boolean | null | undefined>;

export interface IAdminRateOptions {
  /** Sustained actions per second for one operator. Default 2. */
  perSecond?: number;
  /** Actions one operator may make at once above the rate. Default 10. */
  burst?: number;
}

export interface IAdminUiOptions {
  /** Where the page is served (its API under `<path>/api`). Default `'/admin'`. */
  path?: string;
  /** Keys an operator types into the sign-in form (each at least 16 characters). */
  keys?: TAdminKeys;
  /** The application's gate (see `TAdminAuthorizeFn`). With `keys` too, either lets an operator in. */
  authorize?: TAdminAuthorizeFn;
  /** How long a sign-in with a key lasts (ms). Default 3 600 000 (one hour). */
  sessionTtl?: number;
  /**
   * Mark the session cookie `Secure`. Default: when the request came over `https:`. Set `true`
   * behind a TLS-terminating proxy (the request the component sees is then plain `http:`).
   */
  secureCookie?: boolean;
  /** How often the page refreshes its views (ms, at least 500). Default 2 000. */
  refreshInterval?: number;
  /** Actions (every request that changes something) per operator. */
  actionRate?: IAdminRateOptions;
  /** Sign-in attempts per client address (per second / burst). Default `{ perSecond: 0.2, burst: 5 }`. */
  signInRate?: IAdminRateOptions;
}

export interface IResolvedAdminUiOptions {
  path: string;
  keys?: TAdminKeys;
  authorize?: TAdminAuthorizeFn;
  sessionTtl: number;
  secureCookie?: boolean;
  refreshInterval: number;
  actionRate: Required<IAdminRateOptions>;
  signInRate: Required<IAdminRateOptions>;
}

export const ADMIN_UI_DEFAULTS = Object.freeze({
  path: '/admin',
  sessionTtl: 3_600_000,
  refreshInterval: 2_000,
  actionRate: Object.freeze({ perSecond: 2, burst: 10 }),
  signInRate: Object.freeze({ perSecond: 0.2, burst: 5 }),
});

/** Shortest admin key accepted: a key is the whole of the UI's protection. */
export const MIN_ADMIN_KEY_LENGTH = 16;

const PREFIX = '[AdminUi]';

/**
 * Checks the `adminUi` option and lays it over the defaults; throws with a clear message at
 * configure time (before the server listens). `undefined` / `false`: the UI is off.
 */
export function resolveAdminUiOptions(
  given: IAdminUiOptions | false | undefined,
  taken: ReadonlyArray<string | false>,
): IResolvedAdminUiOptions | undefined {
  if (given === undefined || given === false) return undefined;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new Error(`${PREFIX} adminUi must be false or an object of options, got ${JSON.stringify(given)}`);
  }
  const path = given.path ?? ADMIN_UI_DEFAULTS.path;
  if (
    typeof path !== 'string' ||
    !/^\/[A-Za-z0-9._~\-/]*$/.test(path) ||
    path.endsWith('/') ||
    path === '/'
  ) {
    throw new Error(
      `${PREFIX} adminUi.path must start with "/", not end with "/" and hold only URL-safe characters, got ${JSON.stringify(path)}`,
    );
  }
  for (const other of taken) {
    if (other !== false && (other === path || other.startsWith(`${path}/`))) {
      throw new Error(`${PREFIX} adminUi.path ${JSON.stringify(path)} overlaps another path: ${other}`);
    }
  }
  if (given.keys === undefined && given.authorize === undefined) {
    throw new Error(
      `${PREFIX} adminUi needs its own authentication: give keys (an operator signs in with one) or authorize(request)`,
    );
  }
  if (given.authorize !== undefined && typeof given.authorize !== 'function') {
    throw new Error(`${PREFIX} adminUi.authorize must be a function, got ${typeof given.authorize}`);
  }
  if (given.keys !== undefined) {
    if (typeof given.keys !== 'function' && !Array.isArray(given.keys)) {
      throw new Error(`${PREFIX} adminUi.keys must be a list of keys or a function returning one`);
    }
    readAdminKeys(given.keys); // a static list is checked now; a function on every read
  }
  const number = (name: string, value: unknown, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new Error(`${PREFIX} adminUi.${name} must be a number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const rate = (
    name: string,
    value: IAdminRateOptions | undefined,
    fallback: Required<IAdminRateOptions>,
  ) => ({
    perSecond: number(`${name}.perSecond`, value?.perSecond, fallback.perSecond, Number.MIN_VALUE),
    burst: number(`${name}.burst`, value?.burst, fallback.burst, 1),
  });
  if (given.secureCookie !== undefined && typeof given.secureCookie !== 'boolean') {
    throw new Error(
      `${PREFIX} adminUi.secureCookie must be a boolean, got ${JSON.stringify(given.secureCookie)}`,
    );
  }
  return {
    path,
    keys: given.keys,
    authorize: given.authorize,
    sessionTtl: number('sessionTtl', given.sessionTtl, ADMIN_UI_DEFAULTS.sessionTtl, 1_000),
    secureCookie: given.secureCookie,
    refreshInterval: number('refreshInterval', given.refreshInterval, ADMIN_UI_DEFAULTS.refreshInterval, 500),
    actionRate: rate('actionRate', given.actionRate, ADMIN_UI_DEFAULTS.actionRate),
    signInRate: rate('signInRate', given.signInRate, ADMIN_UI_DEFAULTS.signInRate),
  };
}

/** The current keys as `{ key, operator? }`; throws on a malformed or short key. */
export function readAdminKeys(keys: TAdminKeys): IAdminKey[] {
  const list = typeof keys === 'function' ? keys() : keys;
  if (!Array.isArray(list)) throw new Error(`${PREFIX} adminUi.keys() must return a list of keys`);
  return list.map((entry: string | IAdminKey) => {
    const key = typeof entry === 'string' ? entry : entry?.key;
    if (typeof key !== 'string' || key.length < MIN_ADMIN_KEY_LENGTH) {
      throw new Error(
        `${PREFIX} every admin key must be a string of at least ${MIN_ADMIN_KEY_LENGTH} characters`,
      );
    }
    const operator = typeof entry === 'string' ? undefined : entry.operator;
    if (
      operator !== undefined &&
      (typeof operator !== 'string' || operator.length === 0 || operator.length > 100)
    ) {
      throw new Error(`${PREFIX} an admin key's operator must be a string of 1 to 100 characters`);
    }
    return operator === undefined ? { key } : { key, operator };
  });
}
