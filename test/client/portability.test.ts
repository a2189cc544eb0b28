import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { bundleClient, CLIENT_SIZE_BUDGET } from '../../scripts/measure-client-size.ts';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import type { IWebSocketServerOptions } from '../../src/server/options.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { messageLog } from './support.ts';

const root = resolve(import.meta.dir, '../..');
const clientEntry = join(root, 'src/client/index.ts');
/** The only files outside src/client the client may pull in: both use WebCrypto and nothing else. */
const ALLOWED_OUTSIDE = new Set(['src/crypto/ecdh.ts', 'src/crypto/base64.ts', 'src/crypto/sealed-auth.ts']);

/** Every module reachable from `entry`, and every import specifier each one uses. */
async function importGraph(entry: string): Promise<Map<string, string[]>> {
  const transpiler = new Bun.Transpiler({ loader: 'ts' });
  const graph = new Map<string, string[]>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (graph.has(file)) continue;
    const specifiers = transpiler.scan(await Bun.file(file).text()).imports.map((i) => i.path);
    graph.set(file, specifiers);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier));
    }
  }
  return graph;
}

const servers: ITestServer[] = [];
let tempDir: string | undefined;
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
  tempDir = undefined;
});

describe('portability', () => {
  test('the client imports nothing from Bun, Node or the server code', async () => {
    const graph = await importGraph(clientEntry);
    const files = [...graph.keys()].map((file) => relative(root, file)).sort();
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      if (!file.startsWith('src/client/')) expect(ALLOWED_OUTSIDE.has(file)).toBe(true);
    }
    for (const [file, specifiers] of graph) {
      for (const specifier of specifiers) {
        // Relative only: no package, no `bun`, no `node:` builtin.
        expect({ file: relative(root, file), specifier }).toMatchObject({
          specifier: expect.stringMatching(/^\.\.?\//),
        });
      }
    }
  });

  test(`the minified browser bundle is self-contained and at most ${CLIENT_SIZE_BUDGET} bytes gzipped`, async () => {
    const { code, gzipBytes } = await bundleClient();
    expect(code).not.toMatch(/\bimport\s*[\s{("'*]/);
    expect(code).not.toContain('require(');
    expect(code).not.toMatch(/["']node:|["']bun["':]/);
    expect(code).toContain('RoomcastClient');
    expect(gzipBytes).toBeLessThanOrEqual(CLIENT_SIZE_BUDGET);
  });

  test('the bundle runs under Node against the real server, plain and encrypted', async () => {
    const echo =
      (
        getServer: () => ITestServer,
        log: ReturnType<typeof messageLog>,
      ): IWebSocketServerOptions['messageHandler'] =>
      (opts) => {
        log.messageHandler(opts);
        getServer().helper.sendToClient({ clientId: opts.clientId, event: 'echo', data: opts.message.data });
      };
    const plainLog = messageLog();
    const plain: ITestServer = await startServer({
      validateRoomFn: ({ rooms }) => rooms,
      messageHandler: echo(() => plain, plainLog),
    });
    servers.push(plain);
    const encryption = await createEcdhEncryption();
    const secureLog = messageLog();
    const secure: ITestServer = await startServer({
      requireEncryption: true,
      handshakeFn: encryption.handshakeFn,
      outboundTransformer: encryption.outboundTransformer,
      messageHandler: echo(() => secure, secureLog),
    });
    servers.push(secure);

    tempDir = await mkdtemp(join(tmpdir(), 'roomcast-client-'));
    const bundlePath = join(tempDir, 'client.mjs');
    await Bun.write(bundlePath, (await bundleClient()).code);

    const proc = Bun.spawn(
      ['node', join(import.meta.dir, 'fixtures/node-run.mjs'), bundlePath, plain.url, secure.url],
      {
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    const killer = setTimeout(() => proc.kill('SIGKILL'), 8_000);
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(killer);
    if (exitCode !== 0) throw new Error(`node exited with ${exitCode}\n${stdout}\n${stderr}`);

    const steps = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string; value: unknown })
        .map(({ step, value }) => [step, value]),
    ) as Record<string, any>;
    expect(steps.runtime.bun).toBe('undefined'); // really Node, no Bun globals
    if (steps.runtime.globalWebSocket === 'undefined') {
      expect(steps['no-websocket']).toContain('no WebSocket implementation');
    }
    expect(steps.instance).toBe(true);
    expect(steps.connected).toEqual({ userId: 'node-user', hasId: true, state: 'connected' });
    expect(steps.joined).toEqual(['node-room']);
    expect(steps.echo).toEqual({ text: 'from node' });
    expect(steps.closed).toBe('disconnected');
    expect(steps.encrypted).toEqual({ encrypted: true, echo: { text: 'secret from node' } });
    expect(steps.errors).toEqual([]);
    expect(plainLog.messages.map((m) => m.data)).toEqual([{ text: 'from node' }]);
    expect(secureLog.messages.map((m) => m.data)).toEqual([{ text: 'secret from node' }]);
  }, 10_000);
});
