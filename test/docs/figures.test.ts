// Figures the docs state, measured: the README's quick start (run from src/ against its own
// redis-server) is counted with CLIENT LIST and PUBSUB, the dependencies from package.json,
// and each figure's sentence in the docs must say what was measured.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisServer } from '../support/redis-server.ts';
import { markdownFiles, outDir, root } from './code-blocks.ts';

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
const read = (file: string) => readFile(join(root, file), 'utf8');

/** The number a sentence of `file` states, e.g. "two Redis connections per instance" → 2. */
async function statedFigure(file: string, pattern: RegExp): Promise<number> {
  const text = (await read(file)).replace(/\s+/g, ' ');
  const word = pattern.exec(text)?.[1];
  if (word === undefined) throw new Error(`${file} no longer matches ${pattern}`);
  return /^\d+$/.test(word) ? Number(word) : WORDS.indexOf(word.toLowerCase());
}

let redis: RedisServer;
let spy: Redis;
let quickStart: Bun.Subprocess<'ignore', 'pipe', 'inherit'> | undefined;
beforeAll(async () => {
  redis = await RedisServer.start();
  spy = new Redis({ host: '127.0.0.1', port: redis.port });
});
afterAll(async () => {
  quickStart?.kill();
  await quickStart?.exited;
  await spy.quit();
  await redis.stop();
});

describe('figures in the docs', () => {
  test("the README quick start's Redis connections and subscriptions, as README.md and scaling.md state them", async () => {
    const readme = await read('README.md');
    const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Quick start')))?.[1];
    if (!block) throw new Error('no quick start block');
    const code = block
      .replace(/from 'roomcast'/g, `from '${join(root, 'src/index.ts')}'`)
      .replace('port: 3000', 'port: 0')
      .replace('port: 6379', `port: ${redis.port}`);
    expect(code).not.toContain('port: 6379');
    await mkdir(outDir, { recursive: true });
    const file = join(outDir, 'quick-start.ts');
    await writeFile(
      file,
      `const verify = async (token: string) => ({ id: token, role: 'reader' });\n${code}\nconsole.log('listening');\n`,
    );
    quickStart = Bun.spawn([process.execPath, file], {
      cwd: root,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'inherit',
    });
    const reader = quickStart.stdout.getReader();
    const first = await Promise.race([reader.read(), Bun.sleep(15_000).then(() => undefined)]);
    expect(new TextDecoder().decode(first?.value)).toContain('listening');

    const clients =
      String(await spy.call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length - 1; // minus the spy
    const channels = (await spy.call('PUBSUB', 'CHANNELS')) as string[];
    const patterns = Number(await spy.call('PUBSUB', 'NUMPAT'));
    const subscriptions = channels.length + patterns;
    console.log(
      `quick start: ${clients} Redis connections, channels ${channels.sort().join(' ')} + ${patterns} patterns`,
    );

    expect(clients).toBe(await statedFigure('README.md', /and (\w+) Redis connections per instance/));
    expect(subscriptions).toBe(
      await statedFigure('docs/scaling.md', /Redis state \| (\d+) subscriptions per instance/),
    );
    expect(subscriptions).toBe(await statedFigure('docs/scaling.md', /Redis holds (\w+) subscriptions/));
  }, 30_000);

  test('the number of runtime dependencies, as operations.md states it', async () => {
    const pkg = JSON.parse(await read('package.json')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).length).toBe(
      await statedFigure('docs/operations.md', /its (\w+) dependencies/),
    );
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
const anchor = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

describe('tables of contents and tables', () => {
  test('a page with a table of contents lists every ## section', async () => {
    const missing: string[] = [];
    for (const file of ['README.md', ...(await markdownFiles()).filter((f) => f !== 'README.md')]) {
      const text = await read(file);
      const firstSection = text.indexOf('\n## ');
      const links = new Set([...text.slice(0, firstSection).matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]));
      if (links.size === 0) continue; // no table of contents
      const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => anchor(m[1] ?? ''));
      missing.push(...headings.filter((h) => !links.has(h)).map((h) => `${file}#${h}`));
    }
    expect(missing).toEqual([]);
  });

  test("client.md's error table names every code of the SDK's TClientErrorCode", async () => {
    const types = await read('src/client/errors.ts');
    const union = /export type TClientErrorCode =([\s\S]*?);\n/.exec(types)?.[1] ?? '';
    const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(10);
    const client = await read('docs/client.md');
    const table = client.slice(
      client.indexOf('## Events and errors'),
      client.indexOf('## Connection states'),
    );
    expect(codes.filter((code) => !table.includes(`\`${code}\``))).toEqual([]);
  });
});
