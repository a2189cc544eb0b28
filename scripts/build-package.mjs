// Builds the published package: ESM JavaScript and declarations in dist/ from src/, and the
// prebuilt browser bundle of the client in dist/browser/.
// Runs on `npm run build` and on `npm pack` / `npm publish` (the prepack script).
//
// The sources import each other with `.ts` specifiers (Bun runs them as they are).
// tsc's rewriteRelativeImportExtensions turns those into `.js` in the emitted
// JavaScript but leaves declaration files alone, so the same rewrite is applied
// to the .d.ts files here: consumers on any TypeScript version then resolve them.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true }); // nothing stale from an earlier build is ever shipped
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});

const relativeTsSpecifier = /((?:from|import)\s*\(?\s*['"])(\.\.?\/[^'"]*?)\.ts(['"])/g;
let rewritten = 0;
for (const entry of readdirSync(dist, { recursive: true })) {
  const file = join(dist, String(entry));
  if (!file.endsWith('.d.ts')) continue;
  const before = readFileSync(file, 'utf8');
  const after = before.replace(relativeTsSpecifier, '$1$2.js$3');
  if (after !== before) {
    writeFileSync(file, after);
    rewritten++;
  }
}
console.log(`build: dist/ written (${rewritten} declaration files had their .ts imports rewritten to .js)`);

// The admin UI's page files (plain HTML, JS and CSS, read at run time next to the module).
cpSync(join(root, 'src/admin-ui/assets'), join(dist, 'admin-ui/assets'), { recursive: true });

// The prebuilt browser bundle (dist/browser/roomcast-client.js, .map, .d.ts), made with Bun.build:
// Bun is a devDependency, so it is here wherever the package is built.
const bun = process.env.BUN_PATH ?? join(root, 'node_modules/.bin/bun');
execFileSync(bun, [join(root, 'scripts/build-browser-bundle.ts')], { cwd: root, stdio: 'inherit' });
