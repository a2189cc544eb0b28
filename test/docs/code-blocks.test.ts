// Every ```ts block of README.md and docs/*.md compiles under `strict` against the package's
// public entry points (see code-blocks.ts for the marker convention, docs/README.md for authors).
import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allBlocks, type CodeBlock, compile, extractBlocks, root, writeProject } from './code-blocks.ts';

/** A block with one known error, compiled in the same program: proves errors are found and mapped. */
const canary: CodeBlock = {
  file: 'docs/canary.md',
  line: 10,
  preludes: ['helper'],
  code: "import { createClient } from 'roomcast/client';\nconst n: number = helper.getPath();\nvoid createClient;",
};

describe('documentation code blocks', () => {
  test('every TypeScript block compiles in one strict program (and a broken one is reported at its line)', async () => {
    const blocks = await allBlocks();
    expect(blocks.length).toBeGreaterThan(30);
    const map = await writeProject([...blocks, canary]);
    const errors = await compile(map);
    const canaryErrors = errors.filter((e) => e.where.startsWith('docs/canary.md'));
    expect(canaryErrors.map((e) => e.where)).toEqual(['docs/canary.md:12']); // fence at 10, error on its 2nd line
    expect(canaryErrors[0]?.message).toContain('TS2322');
    expect(errors.filter((e) => !e.where.startsWith('docs/canary.md'))).toEqual([]);
  }, 180_000);

  test('markers: skips give a reason, run markers name an existing test that reads the block', async () => {
    const blocks = await allBlocks();
    for (const block of blocks) if (block.skip !== undefined) expect(block.skip.length).toBeGreaterThan(10);
    const runnable = blocks.filter((b) => b.run);
    expect(runnable.map((b) => b.file)).toContain('README.md');
    for (const block of runnable) {
      expect(existsSync(join(root, block.run!))).toBe(true);
      const runner = await readFile(join(root, block.run!), 'utf8');
      expect(runner).toContain(block.file);
    }
  });

  test('the extractor: languages, indented fences, markers and their errors', () => {
    const md = [
      '<!-- check: prelude a b -->',
      '```ts',
      'one;',
      '```',
      '```js',
      'not checked;',
      '```',
      '  <!-- check: skip shown as a sketch only -->',
      '  ```typescript',
      '  two;',
      '  ```',
    ].join('\n');
    const blocks = extractBlocks('x.md', md);
    expect(blocks).toEqual([
      { file: 'x.md', line: 2, code: 'one;', preludes: ['a', 'b'] },
      { file: 'x.md', line: 9, code: 'two;', preludes: [], skip: 'shown as a sketch only' },
    ]);
    expect(() => extractBlocks('x.md', '<!-- check: prelude -->\n```ts\n```')).toThrow('incomplete marker');
    expect(() => extractBlocks('x.md', '<!-- check: skip x -->\n```bash\n```')).toThrow(
      'before a ```bash block',
    );
  });
});
