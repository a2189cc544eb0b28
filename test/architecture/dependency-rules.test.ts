import { beforeAll, describe, expect, test } from 'bun:test';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

// The layer rules of .dependency-cruiser.cjs (docs/architecture.md), run the way CI runs them
// (`npm run lint:deps`: depcruise under Node) on a small project of their own: each import that
// runs against the layers must fail the check, and the allowed ones must pass it.

const root = resolve(import.meta.dir, '../..');
const config = join(root, '.dependency-cruiser.cjs');
const depcruise = join(root, 'node_modules/.bin/depcruise');

interface ICheck {
  status: number;
  output: string;
}

/** Writes `files` (path → source) into a fresh project and runs the layer check on its src/. */
async function check(files: Record<string, string>): Promise<ICheck> {
  const dir = await mkdtemp(join(tmpdir(), 'roomcast-layers-'));
  try {
    const all: Record<string, string> = {
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          module: 'ESNext',
          moduleResolution: 'bundler',
          allowImportingTsExtensions: true,
          noEmit: true,
        },
        include: ['src'],
      }),
      ...files,
    };
    for (const [path, text] of Object.entries(all)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const child = Bun.spawn(['node', depcruise, 'src', '--config', config, '--output-type', 'err'], {
      cwd: dir,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [out, err, status] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { status, output: out + err };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `rule: from → to` for each violation a check reports (a cycle: its first step). */
function violations(result: ICheck): string[] {
  const found = [...result.output.matchAll(/error ([a-z-]+): (\S+) → \s*(\S+)/g)];
  return found.map((m) => `${m[1]}: ${m[2]} → ${m[3]}`).sort();
}

const leaf = 'export const value = 1;\n';

describe('the dependency rules (npm run lint:deps)', () => {
  let clean: ICheck;
  let bad: ICheck;

  beforeAll(async () => {
    [clean, bad] = await Promise.all([
      // Every import points down (or stays in its folder): the check passes.
      check({
        'src/common/constants.ts': leaf,
        'src/bus/envelope.ts': "import { value } from '../common/constants.ts';\nexport const bus = value;\n",
        'src/server/helper.ts':
          "import { bus } from '../bus/envelope.ts';\nimport type { value } from '../common/constants.ts';\nexport const helper = bus;\n",
        'src/client/client.ts': "import { ECDH } from '../crypto/ecdh.ts';\nexport const client = ECDH;\n",
        'src/crypto/ecdh.ts': 'export const ECDH = 1;\n',
        'src/index.ts': "export { helper } from './server/helper.ts';\n",
      }),
      // One project with one wrong import per rule.
      check({
        // Upward: common/ takes a server type (a type-only import counts), bus/ a server module.
        'src/common/types.ts':
          "import type { IOptions } from '../server/options.ts';\nexport type T = IOptions;\n",
        'src/server/options.ts': 'export interface IOptions { a: number }\n',
        'src/bus/envelope.ts': "import { rooms } from '../server/room-names.ts';\nexport const b = rooms;\n",
        'src/server/room-names.ts': 'export const rooms = 1;\n',
        // Sideways: siblings of one layer.
        'src/history/query.ts': "import { p } from '../presence/types.ts';\nexport const q = p;\n",
        'src/presence/types.ts': 'export const p = 1;\n',
        // The SDK takes more than the browser-safe crypto files; the server takes the SDK.
        'src/client/client.ts': "import { log } from '../utils/log.ts';\nexport const c = log;\n",
        'src/utils/log.ts': 'export const log = 1;\n',
        'src/server/helper.ts': "import { c } from '../client/client.ts';\nexport const h = c;\n",
        // The root entry point (Node too) loads the Bun-only core.
        'src/core/index.ts': leaf,
        'src/index.ts': "export * from './core/index.ts';\n",
        // A cycle inside one folder.
        'src/server/a.ts': "import { b } from './b.ts';\nexport const a = () => b;\n",
        'src/server/b.ts': "import { a } from './a.ts';\nexport const b = () => a;\n",
      }),
    ]);
  }, 60_000);

  test('imports that point down pass', () => {
    expect(clean.output).toContain('no dependency violations found');
    expect(clean.status).toBe(0);
  });

  test('every wrong import fails the check, each under its rule', () => {
    expect(bad.status).not.toBe(0);
    const found = violations(bad);
    expect(found).toEqual(
      [
        'layer-common: src/common/types.ts → src/server/options.ts',
        'layer-bus: src/bus/envelope.ts → src/server/room-names.ts',
        'layer-history: src/history/query.ts → src/presence/types.ts',
        'client-is-standalone: src/client/client.ts → src/utils/log.ts',
        'nothing-imports-client: src/server/helper.ts → src/client/client.ts',
        'layer-server: src/server/helper.ts → src/client/client.ts',
        'root-entry-not-core: src/index.ts → src/core/index.ts',
        'no-circular: src/server/a.ts → src/server/b.ts',
      ].sort(),
    );
  });
});
