// Bundles the client the way the package ships it for browsers (minified ESM with a linked source
// map: dist/browser/roomcast-client.js) and prints its size raw and gzipped. The same function writes
// the shipped file (scripts/build-browser-bundle.ts), so the figure is the size of what users load.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Raised from 8 KiB when request(), presence and acknowledgements joined the SDK, and from 9 KiB when
 * requests learned to pace themselves by the server's limits (docs/client.md, "Size").
 */
export const CLIENT_SIZE_BUDGET = 9.5 * 1024;

/** The shipped file's name, in `dist/browser/`; its source map is this plus `.map`. */
export const BROWSER_BUNDLE_NAME = 'roomcast-client.js';

export interface IClientBundle {
  code: string;
  /** The source map (JSON), which the code names in its `sourceMappingURL` comment. */
  map: string;
  bytes: number;
  gzipBytes: number;
}

export async function bundleClient(): Promise<IClientBundle> {
  const entry = fileURLToPath(new URL('../src/client/index.ts', import.meta.url));
  const result = await Bun.build({
    entrypoints: [entry],
    target: 'browser',
    format: 'esm',
    minify: true,
    sourcemap: 'linked',
    naming: BROWSER_BUNDLE_NAME,
  });
  if (!result.success) {
    throw new AggregateError(result.logs, 'bundling src/client/index.ts failed');
  }
  const code = result.outputs.find((output) => output.kind === 'entry-point');
  const map = result.outputs.find((output) => output.kind === 'sourcemap');
  if (!code || !map || result.outputs.length !== 2) throw new Error('expected one bundle and its source map');
  const text = await code.text();
  const bytes = new TextEncoder().encode(text);
  return {
    code: text,
    map: await map.text(),
    bytes: bytes.length,
    gzipBytes: Bun.gzipSync(bytes, { level: 9 }).length,
  };
}

/** The sealed-rooms module's browser file (`roomKeys()`), next to the client's; loaded only by pages that use it. */
export const ROOM_KEYS_BUNDLE_NAME = 'roomcast-room-keys.js';

/**
 * `src/client/room-keys.ts` as one minified ESM file that takes `RoomcastClientError` from the client's
 * bundle next to it (`./roomcast-client.js`), so both report errors of one class.
 */
export async function bundleRoomKeys(): Promise<{ code: string; gzipBytes: number }> {
  const entry = fileURLToPath(new URL('../src/client/room-keys.ts', import.meta.url));
  const result = await Bun.build({
    entrypoints: [entry],
    target: 'browser',
    format: 'esm',
    minify: true,
    plugins: [
      {
        name: 'client-errors-from-the-client-bundle',
        setup(build) {
          build.onResolve({ filter: /\/errors\.ts$/ }, () => ({
            path: `./${BROWSER_BUNDLE_NAME}`,
            external: true,
          }));
        },
      },
    ],
  });
  const output = result.outputs[0];
  if (!result.success || !output)
    throw new AggregateError(result.logs, 'bundling src/client/room-keys.ts failed');
  const code = await output.text();
  return { code, gzipBytes: Bun.gzipSync(new TextEncoder().encode(code), { level: 9 }).length };
}

/** Writes the bundle, its map and a declaration file re-exporting the client's types into `dir`. */
export async function writeBrowserBundle(dir: string): Promise<IClientBundle> {
  const bundle = await bundleClient();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, ROOM_KEYS_BUNDLE_NAME), (await bundleRoomKeys()).code);
  await writeFile(
    join(dir, ROOM_KEYS_BUNDLE_NAME.replace(/\.js$/, '.d.ts')),
    "// The prebuilt browser file of roomcast/client/room-keys.\nexport * from '../client/room-keys.js';\n",
  );
  await writeFile(join(dir, BROWSER_BUNDLE_NAME), bundle.code);
  await writeFile(join(dir, `${BROWSER_BUNDLE_NAME}.map`), bundle.map);
  await writeFile(
    join(dir, BROWSER_BUNDLE_NAME.replace(/\.js$/, '.d.ts')),
    "// The prebuilt browser bundle exports exactly what roomcast/client does.\nexport * from '../client/index.js';\n",
  );
  return bundle;
}

if (import.meta.main) {
  const { bytes, gzipBytes } = await bundleClient();
  const kb = (n: number) => `${(n / 1024).toFixed(2)} KB`;
  console.log(
    `client bundle (dist/browser/${BROWSER_BUNDLE_NAME}): ${bytes} bytes minified (${kb(bytes)}), ${gzipBytes} bytes gzipped (${kb(gzipBytes)})`,
  );
  const roomKeys = await bundleRoomKeys();
  console.log(
    `optional sealed-rooms module (dist/browser/${ROOM_KEYS_BUNDLE_NAME}): ${roomKeys.code.length} bytes minified, ${roomKeys.gzipBytes} bytes gzipped`,
  );
  if (gzipBytes > CLIENT_SIZE_BUDGET) {
    console.error(`over the ${kb(CLIENT_SIZE_BUDGET)} gzip budget`);
    process.exit(1);
  }
}
