// Reads the demo's settings from the environment, failing early with a readable message.

export interface IDemoConfig {
  port: number;
  host: string;
  /** Set: one of many instances sharing this Redis. Unset: single-instance mode. */
  redisUrl?: URL;
  /** Every client must complete the ECDH key exchange; server → client traffic is AES-GCM encrypted. */
  encryption: boolean;
}

export function readDemoConfig(env: Record<string, string | undefined> = process.env): IDemoConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`PORT must be an integer from 0 to 65535, got "${env.PORT}"`);
  }
  return {
    port,
    host: env.HOST ?? '127.0.0.1',
    redisUrl: env.REDIS_URL ? parseRedisUrl(env.REDIS_URL) : undefined,
    encryption: ['1', 'true', 'yes', 'on'].includes((env.DEMO_ENCRYPTION ?? '').toLowerCase()),
  };
}

export function parseRedisUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`REDIS_URL is not a URL: "${value}" (expected redis://host:port)`);
  }
  if (url.protocol !== 'redis:') throw new Error(`REDIS_URL must start with redis://, got "${value}"`);
  return url;
}

/** Options for `RedisHelper` taken from a `redis://[user:password@]host[:port][/db]` URL. */
export function redisOptionsFromUrl(url: URL): {
  host: string;
  port: number;
  user?: string;
  password?: string;
  database?: number;
} {
  const database = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined;
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(database !== undefined && Number.isInteger(database) ? { database } : {}),
  };
}
