// Bundles the client the way a browser app would get it (minified ESM) and
// prints its size raw and gzipped. Budget: 8 KB gzipped (6 KB before history
// recovery, URL lists and history() were added; they cost about 1.5 KB).
import { fileURLToPath } from 'node:url';

/**
 * Raised from 8 KiB when request(), presence and acknowledgements joined the SDK, and from 9 KiB when
 * requests learned to pace themselves by the server's limits (docs/client.md, "Size").
 */
export const CLIENT_SIZE_BUDGET = 9.5 * 1024;

export interface IClientBundle {
  code: string;
  bytes: number;
  gzipBytes: number;
}

export async function bundleClient(): Promise<IClientBundle> {
  const entry = fileURLToPath(new URL('../src/client/index.ts', import.meta.url));
  const result = await Bun.build({ entrypoints: [entry], target: 'browser', format: 'esm', minify: true });
  if (!result.success) {
    throw new AggregateError(result.logs, 'bundling src/client/index.ts failed');
  }
  const [output] = result.outputs;
  if (!output || result.outputs.length !== 1) throw new Error('expected exactly one bundle output');
  const code = await output.text();
  const bytes = new TextEncoder().encode(code);
  return { code, bytes: bytes.length, gzipBytes: Bun.gzipSync(bytes, { level: 9 }).length };
}

if (import.meta.main) {
  const { bytes, gzipBytes } = await bundleClient();
  const kb = (n: number) => `${(n / 1024).toFixed(2)} KB`;
  console.log(
    `client bundle: ${bytes} bytes minified (${kb(bytes)}), ${gzipBytes} bytes gzipped (${kb(gzipBytes)})`,
  );
  if (gzipBytes > CLIENT_SIZE_BUDGET) {
    console.error(`over the ${kb(CLIENT_SIZE_BUDGET)} gzip budget`);
    process.exit(1);
  }
}
