// The package as users get it: `npm pack` the project (prepack builds dist/),
// install the tarball into an empty Node project and an empty Bun project, and
// use it from there. Nothing here imports src/: every check goes through the
// installed tarball, its exports map and its shipped declarations.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subprocess } from 'bun';
import { launchChromium } from '../browser/demo-harness.ts';
import { rawUpgrade } from '../support/raw-ws.ts';
import { RedisServer } from '../support/redis-server.ts';

const root = resolve(import.meta.dir, '../..');
const consumerDir = join(import.meta.dir, 'consumer');
const bun = process.execPath; // the Bun running this test
const tsc = join(root, 'node_modules/typescript/bin/tsc');

// npm lifecycle variables of an outer `npm test` must not steer the inner npm commands.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));

async function run(cmd: string[], cwd: string, timeoutMs = 60_000): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, env: cleanEnv, stdout: 'pipe', stderr: 'pipe' });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${cmd.join(' ')} exited with ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

/** The README's quick start block, made runnable here: a stub `verify`, port 0, the test's Redis. */
async function readmeQuickStart(redisPort: number): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README.md has no ```ts block under "## Quick start"');
  const replaceOnce = (code: string, from: string, to: string): string => {
    if (code.split(from).length !== 2) throw new Error(`the quick start no longer contains "${from}" once`);
    return code.replace(from, to);
  };
  let code = replaceOnce(block, 'port: 3000', 'port: 0');
  code = replaceOnce(code, 'port: 6379', `port: ${redisPort}`);
  return [
    "const verify = async (token: string) => (token === 'ok' ? { id: 'ada', role: 'reader' } : null);",
    code,
    'console.log(JSON.stringify({ listening: server.port }));',
  ].join('\n');
}

/** Resolves with the first stdout line of `proc` that parses as JSON with `key`. */
async function firstJsonLine(proc: Subprocess<'ignore', 'pipe', 'pipe'>, key: string, timeoutMs: number) {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => undefined)]);
    if (!chunk || chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
    for (const line of text.split('\n')) {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (key in parsed) {
          reader.releaseLock();
          return parsed;
        }
      } catch {}
    }
  }
  const stderr = await Promise.race([new Response(proc.stderr).text(), Bun.sleep(500).then(() => '')]);
  throw new Error(`no {"${key}": …} line on stdout within ${timeoutMs} ms\n${text}\n${stderr}`);
}

let work: string;
let tarball: string;
let nodeProject: string;
let bunProject: string;
let redis: RedisServer;
let quickStart: Subprocess<'ignore', 'pipe', 'pipe'> | undefined;
let quickStartUrl: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'roomcast-package-'));
  const [, started] = await Promise.all([
    run(['npm', 'pack', '--pack-destination', work, '--silent'], root, 90_000),
    RedisServer.start(),
  ]);
  redis = started;
  const packed = (await readdir(work)).filter((name) => name.endsWith('.tgz'));
  expect(packed).toHaveLength(1);
  tarball = join(work, packed[0] as string);

  nodeProject = join(work, 'node-app');
  bunProject = join(work, 'bun-app');
  for (const dir of [nodeProject, bunProject]) {
    await mkdir(dir);
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
  }
  // ioredis and hono come from the registry (or npm's cache when it already has them).
  await Promise.all([
    run(['npm', 'install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], nodeProject),
    run([bun, 'add', tarball], bunProject),
  ]);

  await writeFile(join(bunProject, 'quick-start.ts'), await readmeQuickStart(redis.port));
  quickStart = Bun.spawn([bun, 'quick-start.ts'], {
    cwd: bunProject,
    env: cleanEnv,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const { listening } = await firstJsonLine(quickStart, 'listening', 15_000);
  quickStartUrl = `ws://127.0.0.1:${listening}/ws`;
}, 150_000);

afterAll(async () => {
  quickStart?.kill('SIGKILL');
  await quickStart?.exited;
  await redis?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, 20_000);

describe('the packed tarball', () => {
  test('holds built ESM and declarations for the four entry points, with .js imports only', async () => {
    const files = (await run(['tar', '-tzf', tarball], work))
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    for (const entry of ['', 'client/', 'core/', 'http-api/']) {
      expect(files).toContain(`dist/${entry}index.js`);
      expect(files).toContain(`dist/${entry}index.d.ts`);
    }
    for (const asset of ['index.html', 'login.html', 'admin.js', 'admin.css']) {
      expect(files).toContain(`dist/admin-ui/assets/${asset}`);
    }
    expect(files).toContain('CHANGELOG.md');
    expect(files).toContain('README.md');
    expect(files).toContain('docs/grafana-dashboard.json');
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('bench/'))).toBe(false);

    const installed = join(nodeProject, 'node_modules/roomcast');
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.type).toBe('module');
    expect(manifest.engines.node).toBeString();
    expect(manifest.repository.url).toBeString();
    expect(manifest.keywords.length).toBeGreaterThan(0);
    expect(Object.keys(manifest.exports)).toEqual([
      '.',
      './client',
      './client/browser',
      './client/room-keys',
      './dist/browser/*',
      './core',
      './http-api',
      './package.json',
    ]);
    for (const field of ['homepage', 'bugs']) expect(manifest[field]).toBeDefined();
    for (const file of [
      'roomcast-client.js',
      'roomcast-client.js.map',
      'roomcast-client.d.ts',
      'roomcast-room-keys.js',
      'roomcast-room-keys.d.ts',
    ]) {
      expect(files).toContain(`dist/browser/${file}`);
    }

    // Node resolves `./x.js`, never `./x.ts`: no emitted file may keep a relative .ts specifier.
    const relativeTs = /(?:from|import)\s*\(?\s*['"]\.\.?\/[^'"]*\.ts['"]/;
    const emitted = files.filter((f) => f.startsWith('dist/') && /\.(js|d\.ts)$/.test(f));
    expect(emitted.length).toBeGreaterThan(30);
    for (const file of emitted) {
      const text = await readFile(join(installed, file), 'utf8');
      if (relativeTs.test(text)) throw new Error(`${file} imports a .ts path`);
    }
  });

  test("the README's quick start runs in an empty Bun project, relays a chat message and refuses a foreign Origin", async () => {
    const socket = new WebSocket(quickStartUrl);
    const frames: Array<{ event: string; data: any }> = [];
    const waitFor = (event: string) =>
      new Promise<any>((done, fail) => {
        const timer = setTimeout(
          () => fail(new Error(`no ${event} frame; got ${JSON.stringify(frames)}`)),
          5_000,
        );
        const check = () => {
          const frame = frames.find((f) => f.event === event);
          if (!frame) return setTimeout(check, 10);
          clearTimeout(timer);
          done(frame.data);
        };
        check();
      });
    socket.onmessage = ({ data }) => frames.push(JSON.parse(String(data)));
    await new Promise((open) => (socket.onopen = open));
    socket.send(JSON.stringify({ event: 'authenticate', data: { token: 'ok' } }));
    const connected = await waitFor('connected');
    expect(connected.userId).toBe('ada');
    socket.send(JSON.stringify({ event: 'join', data: { rooms: ['public-lobby', 'private-x'] } }));
    expect((await waitFor('join')).rooms).toEqual(['public-lobby']);
    socket.send(JSON.stringify({ event: 'chat', data: { text: 'hello from the test' } })); // as the SDK page sends it
    expect(await waitFor('chat')).toEqual({ from: connected.id, text: 'hello from the test' });
    socket.close();
    // Its Origin check: a page of another site is refused before any socket exists.
    expect((await rawUpgrade(quickStartUrl, { origin: 'https://evil.example' })).status).toBe(403);
  });

  test('a page in Chromium loads the prebuilt browser bundle straight from the installed package', async () => {
    await copyFile(join(consumerDir, 'browser-page.ts'), join(bunProject, 'browser-page.ts'));
    const server = Bun.spawn([bun, 'browser-page.ts'], {
      cwd: bunProject,
      env: cleanEnv,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const browser = await launchChromium();
    try {
      const { listening } = await firstJsonLine(server, 'listening', 15_000);
      const origin = `http://127.0.0.1:${listening}`;
      const map = (await (await fetch(`${origin}/roomcast-client.js.map`)).json()) as { sources: string[] };
      expect(map.sources.some((source) => source.endsWith('client/client.ts'))).toBe(true);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(origin);
      await page.waitForFunction(() => document.title.startsWith('echo:'), undefined, { timeout: 10_000 });
      expect(await page.title()).toBe('echo:from the prebuilt bundle as grace');
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      server.kill('SIGKILL');
      await server.exited;
    }
  });

  test('under Node, the emitter publishes through Redis and roomcast/client on a Bun server receives it', async () => {
    await copyFile(join(consumerDir, 'node-consumer.mjs'), join(nodeProject, 'node-consumer.mjs'));
    // Node 20 has a WebSocket behind a flag; from 22 on it is global (the client needs one).
    const nodeMajor = Number((await run(['node', '-p', 'process.versions.node'], work)).split('.')[0]);
    const nodeFlags = nodeMajor < 22 ? ['--experimental-websocket'] : [];
    const stdout = await run(
      ['node', ...nodeFlags, 'node-consumer.mjs', quickStartUrl, String(redis.port)],
      nodeProject,
      30_000,
    );
    const report = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(report).toEqual({
      runtime: 'node',
      bun: 'undefined',
      serverHelper: expect.stringContaining('Bun runtime required'),
      userId: 'ada',
      joined: ['public-lobby'],
      notice: { text: 'from node' },
    });
  }, 30_000);

  test('a consumer type-checks against the shipped declarations (Node without Bun types; core with them)', async () => {
    // The @types packages are the ones such an application has anyway (ioredis's declarations
    // need @types/node). The Node project also checks every shipped declaration it reaches
    // (skipLibCheck off) without the DOM lib: a Node program must not need it (issue 19).
    // The Bun project skips that (checking bun-types alone takes ~40 s).
    const base = {
      strict: true,
      target: 'ES2022',
      noEmit: true,
      typeRoots: [join(root, 'node_modules/@types')],
    };
    const projects = {
      'tsconfig.node.json': {
        compilerOptions: {
          ...base,
          skipLibCheck: false,
          skipDefaultLibCheck: true, // TypeScript's own lib files are not what is under test
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
        },
        files: ['consumer.ts'],
      },
      'tsconfig.bun.json': {
        compilerOptions: {
          ...base,
          skipLibCheck: true,
          module: 'ESNext',
          moduleResolution: 'Bundler',
          types: ['bun'],
        },
        files: ['consumer-core.ts'],
      },
    };
    for (const [name, config] of Object.entries(projects)) {
      await writeFile(join(nodeProject, name), JSON.stringify(config));
    }
    for (const file of ['consumer.ts', 'consumer-core.ts']) {
      await copyFile(join(consumerDir, file), join(nodeProject, file));
    }
    // Each @ts-expect-error in the consumers fails the check if the shipped types were `any`.
    await Promise.all(
      Object.keys(projects).map((name) => run(['node', tsc, '-p', name], nodeProject, 90_000)),
    );
  }, 90_000);
});
