import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBunRuntime } from '../../src/common/runtime.ts';
import { BaseApplication, type IComponent, WebSocketComponent } from '../../src/core/index.ts';
import { silentLogger } from '../../src/index.ts';
import { freePort } from '../support/redis-server.ts';
import { recordingLogger } from '../support/server.ts';
import { TestClient } from '../support/ws-client.ts';
import { TestApplication, withAuth } from './app-fixture.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const quiet = { logger: silentLogger, handleSignals: false } as const;

describe('address', () => {
  test('binds 127.0.0.1 by default and takes the port from PORT when none is given', async () => {
    const port = await freePort();
    const saved = { PORT: process.env.PORT, HOST: process.env.HOST };
    process.env.PORT = String(port);
    delete process.env.HOST;
    const app = new BaseApplication(quiet);
    try {
      expect(await app.start()).toEqual({ hostname: '127.0.0.1', port, url: `http://127.0.0.1:${port}` });
    } finally {
      await app.stop();
      Object.assign(process.env, saved);
      if (saved.PORT === undefined) delete process.env.PORT;
      if (saved.HOST === undefined) delete process.env.HOST;
    }
  });

  test('an invalid port is refused with a clear message', async () => {
    const app = new BaseApplication({ ...quiet, port: 70_000 });
    await expect(app.start()).rejects.toThrow('port must be an integer from 0 to 65535, got 70000');
  });
});

describe('lifecycle', () => {
  test('hooks run in order: preConfigure, configure, listen, start; stop runs in reverse', async () => {
    const order: string[] = [];
    const tracer = (name: string) =>
      class implements IComponent {
        configure() {
          order.push(`${name}.configure`);
        }
        start({ server }: { server: { port?: number } }) {
          order.push(`${name}.start(listening=${typeof server.port === 'number'})`);
        }
        stop() {
          order.push(`${name}.stop`);
        }
      };
    class App extends BaseApplication {
      override preConfigure() {
        order.push('preConfigure');
        this.component(tracer('a'));
        this.component(tracer('b'));
      }
    }
    const app = new App({ ...quiet, port: 0 });
    await app.start();
    await expect(app.start()).rejects.toThrow('start() can only be called once');
    expect(() => app.component(tracer('late'))).toThrow('register components before start()');
    await app.stop();
    expect(order).toEqual([
      'preConfigure',
      'a.configure',
      'b.configure',
      'a.start(listening=true)',
      'b.start(listening=true)',
      'b.stop',
      'a.stop',
    ]);
  });

  test('a component failing to start: the error surfaces, the others are stopped, the port is freed', async () => {
    const port = await freePort();
    const stopped: string[] = [];
    class Broken implements IComponent {
      start(): void {
        throw new Error('cannot start');
      }
    }
    class App extends BaseApplication {
      override preConfigure() {
        this.bind({ key: '@app/websocket/authenticate-handler' }).toValue(() => ({ userId: 'x' }));
        const ws = this.component(WebSocketComponent);
        const stop = ws.stop.bind(ws);
        ws.stop = async () => {
          stopped.push('websocket');
          await stop();
        };
        this.component(Broken);
      }
    }
    const app = new App({ ...quiet, port });
    await expect(app.start()).rejects.toThrow('cannot start');
    expect(stopped).toEqual(['websocket']);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  test('stop() is bounded: a hanging component cannot keep sockets or the port open', async () => {
    const logger = recordingLogger();
    class Hangs implements IComponent {
      stop(): Promise<void> {
        return new Promise(() => {});
      }
    }
    const app = new TestApplication(withAuth(), { logger, shutdownTimeout: 300 });
    app.component(Hangs); // stops first (reverse order) and never finishes
    const { port } = await app.start();
    const client = await TestClient.authenticated(app.wsUrl());
    cleanups.push(() => client.close());

    const startedAt = Date.now();
    await app.stop();
    expect(Date.now() - startedAt).toBeLessThan(1_500);
    expect(logger.lines.some((line) => line.message.includes('longer than 300ms'))).toBe(true);
    expect((await client.closedWithin()).code).toBe(1001); // Bun's forced close
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});

describe('signals', () => {
  test('SIGTERM stops the process gracefully: clients get 1001 and the exit code is 0', async () => {
    const child = Bun.spawn(['./node_modules/.bin/bun', 'test/core/fixtures/signal-app.ts'], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
    cleanups.push(() => child.kill('SIGKILL'));
    const port = await readPort(child.stdout);
    const client = await TestClient.authenticated(`ws://127.0.0.1:${port}/ws`, {});
    cleanups.push(() => client.close());

    child.kill('SIGTERM');
    expect((await client.closedWithin(5_000)).code).toBe(1001);
    const exitCode = await Promise.race([child.exited, Bun.sleep(5_000).then(() => 'still running')]);
    expect(exitCode).toBe(0);
    expect(await new Response(child.stderr).text()).not.toContain('error');
  });
});

describe('runtime check', () => {
  test('on Node.js, registering the component fails with a clear message', async () => {
    expect(isBunRuntime()).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-node-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Node 20 cannot load TypeScript, so the real ./core module is bundled for Node first.
    const build = await Bun.build({ entrypoints: ['src/core/index.ts'], target: 'node', outdir: dir });
    expect(build.success).toBe(true);
    const bundle = join(dir, 'index.js');
    const node = Bun.spawn(['node', 'test/core/fixtures/node-check.mjs', bundle], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
    cleanups.push(() => node.kill('SIGKILL'));
    const [out, err, code] = await Promise.all([
      new Response(node.stdout).text(),
      new Response(node.stderr).text(),
      node.exited,
    ]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out.trim()).toBe(
      'ERROR [WebSocketComponent] Bun runtime required: this uses Bun native WebSockets and does not run on Node.js',
    );
  });
});

/** Reads the child's stdout until it prints `PORT=<n>` (bounded). */
async function readPort(stream: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stream.getReader();
  let text = '';
  const deadline = Date.now() + 10_000;
  try {
    while (Date.now() < deadline) {
      const next = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)]);
      if (!next || next.done) break;
      text += new TextDecoder().decode(next.value);
      const match = /PORT=(\d+)/.exec(text);
      if (match) return Number(match[1]);
    }
  } finally {
    reader.releaseLock();
  }
  throw new Error(`the child never printed its port; got: ${text}`);
}
