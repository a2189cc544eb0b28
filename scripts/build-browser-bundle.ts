// Writes dist/browser/: the client SDK as one minified ESM file, its source map and its types.
// Run by scripts/build-package.mjs (under Bun: it uses Bun.build) after tsc has written dist/.
import { fileURLToPath } from 'node:url';
import { writeBrowserBundle } from './measure-client-size.ts';

const dir = fileURLToPath(new URL('../dist/browser/', import.meta.url));
const { bytes, gzipBytes } = await writeBrowserBundle(dir);
console.log(`build: dist/browser/ written (${bytes} bytes minified, ${gzipBytes} gzipped)`);
