// Compiles every ```ts / ```typescript block of README.md and docs/*.md under `strict`,
// importing the package by its public names (roomcast, roomcast/client, roomcast/core,
// mapped to src/ with tsconfig `paths`), in ONE tsc program.
//
// Marker convention (an HTML comment on the line right before the opening fence;
// full text in docs/README.md):
//   <!-- check: prelude NAME -->  the block is a fragment: docs/preludes/NAME.ts is put
//                                 before it (ambient `declare`s, no imports, so the block
//                                 keeps its own imports) and docs/preludes/NAME.after.ts,
//                                 if there is one, after it (to close a function body the
//                                 fragment belongs in). Several: `prelude a b`.
//   <!-- check: skip REASON -->   the block is not checked (REASON is required).
//   <!-- check: run TEST -->      the block is also run against a real server, by TEST
//                                 (a test file that reads the block from the markdown).
// Markers combine with `;`: `<!-- check: prelude auth; run test/package/install.test.ts -->`.
// Every other ```ts block must compile as it is. Other languages are not checked.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';

export const root = resolve(import.meta.dir, '../..');
const preludeDir = join(root, 'docs/preludes');
/** Where the generated files go (gitignored, outside tsconfig's `include`). */
export const outDir = join(root, '.docs-check');

export interface CodeBlock {
  file: string; // relative to root
  line: number; // 1-based line of the opening fence
  code: string;
  preludes: string[];
  skip?: string;
  /** The test file that runs this block (the `run` marker). */
  run?: string;
}

export async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', ...docs.sort()];
}

export function extractBlocks(file: string, text: string): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(\S*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '```', lang = ''] = open;
    let end = i + 1;
    while (end < lines.length && lines[end]?.trim() !== fence) end++;
    const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    const marker = /^\s*<!--\s*check:\s*(.*?)\s*-->\s*$/.exec(lines[i - 1] ?? '')?.[1];
    if (lang === 'ts' || lang === 'typescript') {
      const block: CodeBlock = { file, line: i + 1, code: body.join('\n'), preludes: [] };
      for (const part of marker ? marker.split(';') : []) {
        const [kind, ...rest] = part.trim().split(/\s+/);
        if (kind === 'prelude' && rest.length > 0) block.preludes = rest;
        else if (kind === 'skip' && rest.length > 0) block.skip = rest.join(' ');
        else if (kind === 'run' && rest.length > 0) block.run = rest.join(' ');
        else throw new Error(`${file}:${i}: unknown or incomplete marker "${part.trim()}"`);
      }
      blocks.push(block);
    } else if (marker) {
      throw new Error(`${file}:${i}: a check marker before a \`\`\`${lang} block`);
    }
    i = end;
  }
  return blocks;
}

export async function allBlocks(): Promise<CodeBlock[]> {
  const out: CodeBlock[] = [];
  for (const file of await markdownFiles())
    out.push(...extractBlocks(file, await readFile(join(root, file), 'utf8')));
  return out;
}

export function blockFileName(block: CodeBlock): string {
  return `${block.file.replace(/[/.]/g, '_')}_L${block.line}.ts`;
}

/** Writes the blocks and a tsconfig into outDir; returns the generated file → block map. */
export async function writeProject(blocks: CodeBlock[]): Promise<Map<string, CodeBlock>> {
  await rm(join(outDir, 'blocks'), { recursive: true, force: true }); // figures.test.ts writes beside it
  await mkdir(join(outDir, 'blocks'), { recursive: true });
  const map = new Map<string, CodeBlock>();
  for (const block of blocks) {
    if (block.skip) continue;
    const parts: string[] = [];
    const after: string[] = [];
    for (const name of block.preludes) {
      const text = await readFile(join(preludeDir, `${name}.ts`), 'utf8').catch(() => {
        throw new Error(`${block.file}:${block.line}: no prelude docs/preludes/${name}.ts`);
      });
      parts.push(text);
      after.unshift(await readFile(join(preludeDir, `${name}.after.ts`), 'utf8').catch(() => ''));
    }
    // `export {}` makes every file a module, so blocks do not share names.
    const header = `export {};\n${parts.join('\n')}\n// ---- ${block.file}:${block.line}\n`;
    const name = blockFileName(block);
    map.set(`blocks/${name}`, { ...block, line: block.line - header.split('\n').length + 2 });
    await writeFile(join(outDir, 'blocks', name), `${header}${block.code}\n${after.join('')}`);
  }
  const src = (p: string) => relative(outDir, join(root, 'src', p));
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'bundler',
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      types: ['bun'],
      strict: true,
      noUncheckedIndexedAccess: true,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
      skipLibCheck: true,
      noEmit: true,
      noUnusedLocals: false,
      paths: {
        roomcast: [src('index.ts')],
        'roomcast/client': [src('client/index.ts')],
        'roomcast/core': [src('core/index.ts')],
        'roomcast/http-api': [src('http-api/index.ts')],
      },
    },
    include: ['blocks'],
  };
  await writeFile(join(outDir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  return map;
}

export interface BlockError {
  where: string;
  message: string;
}

/** One tsc program over every generated file; errors mapped back to markdown lines. */
export async function compile(map: Map<string, CodeBlock>): Promise<BlockError[]> {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const proc = Bun.spawn(['node', tsc, '--noEmit', '--pretty', 'false', '-p', outDir], {
    cwd: outDir,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  await proc.exited;
  const errors: BlockError[] = [];
  for (const line of `${stdout}\n${stderr}`.split('\n')) {
    if (!line.trim()) continue;
    const m = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    const block = m ? map.get(m[1] ?? '') : undefined;
    if (m && block) {
      const mdLine = block.line + Number(m[2]) - 1;
      errors.push({ where: `${block.file}:${mdLine}`, message: m[4] ?? '' });
    } else if (/error/.test(line)) {
      errors.push({ where: m?.[1] ?? '(tsc)', message: line });
    } else if (errors.length > 0) {
      const last = errors[errors.length - 1]!;
      last.message += `\n${line}`;
    }
  }
  if (errors.length === 0 && (await proc.exited) !== 0)
    errors.push({ where: '(tsc)', message: stdout + stderr });
  return errors;
}

if (import.meta.main) {
  const started = performance.now();
  const blocks = await allBlocks();
  const map = await writeProject(blocks);
  const errors = await compile(map);
  for (const e of errors) console.log(`${e.where}: ${e.message}`);
  console.log(
    `${blocks.length} blocks, ${map.size} compiled, ${blocks.length - map.size} skipped, ${errors.length} errors, ${Math.round(performance.now() - started)} ms`,
  );
  process.exit(errors.length ? 1 : 0);
}
