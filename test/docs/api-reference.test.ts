// The API reference is generated from the declarations by TypeDoc (`npx typedoc`, settings in
// typedoc.json, output in the gitignored api-reference/). Built here so CI fails when it no longer
// builds, warns (a broken {@link}, say) or leaves out an exported class or function.
import { expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as client from '../../src/client/index.ts';
import * as core from '../../src/core/index.ts';
import * as httpApi from '../../src/http-api/index.ts';
import * as root from '../../src/index.ts';
import { root as projectRoot } from './code-blocks.ts';

test('typedoc builds the reference without warnings, with a page for every exported class and function', async () => {
  const proc = Bun.spawn(
    ['node', join(projectRoot, 'node_modules/typedoc/bin/typedoc'), '--treatWarningsAsErrors'],
    {
      cwd: projectRoot,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect({ code, output: `${stdout}${stderr}`.trim() }).toEqual({ code: 0, output: '' });

  const out = join(projectRoot, 'api-reference');
  const missing: string[] = [];
  for (const [prefix, exports] of [
    ['roomcast', root],
    ['roomcast_client', client],
    ['roomcast_core', core],
    ['roomcast_http-api', httpApi],
  ] as const) {
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== 'function') continue; // constants and objects: pages of their own kinds
      const kind = /^class\b/.test(Function.prototype.toString.call(value)) ? 'classes' : 'functions';
      if (!existsSync(join(out, kind, `${prefix}.${name}.html`))) missing.push(`${kind}/${prefix}.${name}`);
    }
  }
  expect(missing).toEqual([]);
  expect(existsSync(join(out, 'index.html'))).toBe(true);
}, 120_000);
