// Doc blocks marked `<!-- check: run test/docs/run-blocks.test.ts -->`, run as written against
// a real redis-server (only the Redis port changes, and the port comes from $PORT=0), from src/
// through the public names, and driven with the client SDK. The README's quick start is run by
// test/package/install.test.ts (from the packed tarball) and test/docs/figures.test.ts.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient } from '../../src/client/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { allBlocks, outDir, root } from './code-blocks.ts';

const entry: Record<string, string> = {
  roomcast: 'src/index.ts',
  'roomcast/client': 'src/client/index.ts',
  'roomcast/client/room-keys': 'src/client/room-keys.ts',
  'roomcast/core': 'src/core/index.ts',
};

let redis: RedisServer;
const procs: Bun.Subprocess<'ignore', 'pipe', 'inherit'>[] = [];
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const proc of procs) proc.kill();
  await Promise.all(procs.map((p) => p.exited));
  await redis.stop();
});

/** Writes the block as a script (imports mapped to src/, Redis port replaced, `server.port` printed) and starts it. */
async function start(code: string, name: string) {
  const mapped = code
    .replace(
      /from '(roomcast(?:\/client|\/core)?)'/g,
      (_, spec: string) => `from '${join(root, entry[spec]!)}'`,
    )
    .replace('port: 6379', `port: ${redis.port}`);
  expect(mapped).not.toContain('port: 6379');
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${name}.ts`);
  await writeFile(file, `${mapped}\nconsole.log(JSON.stringify({ listening: server.port }));\n`);
  const proc = Bun.spawn([process.execPath, file], {
    cwd: root,
    env: { ...process.env, PORT: '0' },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
  });
  procs.push(proc);
  const lines: string[] = [];
  const reader = proc.stdout.getReader();
  let buffered = '';
  (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += new TextDecoder().decode(value);
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    }
  })();
  const waitFor = async (pattern: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const line = lines.find((l) => pattern.test(l));
      if (line) return line;
      await Bun.sleep(50);
    }
    throw new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`);
  };
  const port = Number(JSON.parse(await waitFor(/"listening"/, 15_000)).listening);
  return { port, waitFor };
}

describe('runnable doc blocks', () => {
  test('every block marked for this file is one this file runs', async () => {
    const marked = (await allBlocks()).filter((b) => b.run === 'test/docs/run-blocks.test.ts');
    expect(marked.map((b) => `${b.file}:${b.code.split('\n')[0]}`)).toEqual([
      "docs/cluster.md:import { RedisHelper, WebSocketServerHelper } from 'roomcast';",
    ]);
  });

  test("cluster.md's presence server: a client joins team-a and the script's own log shows it", async () => {
    const block = (await allBlocks()).find((b) => b.file === 'docs/cluster.md' && b.run);
    const { port, waitFor } = await start(block!.code, 'cluster-presence');
    const client = createClient(`ws://127.0.0.1:${port}/ws`, { auth: { token: 'ada' } });
    try {
      expect((await client.ready).userId).toBe('ada');
      expect(await client.join('team-a')).toEqual(['team-a']);
      expect(await client.presence('team-a')).toMatchObject({ clients: 1, users: 1 });
      // The block logs presenceStats and presence every 5 s.
      await waitFor(/clients: 1,/, 8_000); // console.log spreads the object over lines
      await waitFor(/users: 1,?$/, 1_000);
      await waitFor(/userId: "ada"/, 1_000); // the member list
    } finally {
      client.close();
    }
  }, 30_000);
});
