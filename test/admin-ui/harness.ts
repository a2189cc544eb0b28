// Three (or n) instances of test/admin-ui/fixtures/admin-instance.ts as child processes on one
// real redis-server, for the Chromium test and the screenshot script. Nothing is left running:
// `stop()` SIGKILLs every instance and stops Redis.

import type { Subprocess } from 'bun';
import type { Page } from 'playwright-core';
import { pump } from '../browser/demo-harness.ts';
import { spawnInstance } from '../support/child-instance.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import { TestClient } from '../support/ws-client.ts';

export const ADMIN_KEY = 'admin-ui-test-key-0123456789';
const FIXTURE = `${import.meta.dir}/fixtures/admin-instance.ts`;

export interface IAdminInstance {
  name: string;
  port: number;
  /** `ws://127.0.0.1:port/ws` */
  url: string;
  /** `http://127.0.0.1:port` */
  http: string;
  proc: Subprocess;
  /** Every line the instance printed after `ready` (its JSON log lines). */
  lines(): string[];
}

export interface IAdminFleet {
  redis: RedisServer;
  instances: IAdminInstance[];
  clients: Set<TestClient>;
  /** A real WebSocket client on `instance`, authenticated as `user`. */
  connect(instance: IAdminInstance, user: string): Promise<TestClient>;
  stop(): Promise<void>;
}

/** Every complete line printed so far on `stream` (read in the background, never blocking the child). */
function pumpLines(stream: ReadableStream<Uint8Array>): () => string[] {
  const output = pump(stream);
  return () =>
    output
      .text()
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.length > 0);
}

export async function startAdminFleet(count = 3, env: Record<string, string> = {}): Promise<IAdminFleet> {
  const redis = await RedisServer.start();
  const processes = new Set<Subprocess>();
  const clients = new Set<TestClient>();
  const stop = async () => {
    for (const client of clients) client.ws.close();
    clients.clear();
    for (const proc of processes) {
      proc.kill('SIGKILL');
      await proc.exited;
    }
    processes.clear();
    await redis.stop();
  };
  try {
    const instances = await Promise.all(
      Array.from({ length: count }, async (_, n) => {
        const port = await freePort();
        const name = `edge-${n + 1}`;
        const child = await spawnInstance({
          fixture: FIXTURE,
          port,
          processes,
          timeoutMs: 20_000,
          env: {
            ...process.env,
            PORT: String(port),
            REDIS_PORT: String(redis.port),
            ADMIN_KEY,
            NAME: name,
            ...env,
          },
        });
        return { ...child, name, lines: pumpLines(child.proc.stdout as ReadableStream<Uint8Array>) };
      }),
    );
    return {
      redis,
      instances,
      clients,
      async connect(instance, user) {
        const client = await TestClient.authenticated(instance.url, { token: 'ok', user });
        clients.add(client);
        return client;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Opens the admin UI of `instance` in `page` and signs in with `key`. */
export async function signIn(page: Page, instance: IAdminInstance, key = ADMIN_KEY): Promise<void> {
  await page.goto(`${instance.http}/admin/`);
  await page.fill('#key', key);
  await page.click('#sign-in button[type="submit"]');
  await page.waitForSelector('#instances');
}
