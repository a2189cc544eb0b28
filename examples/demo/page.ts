// The demo page: static HTML and CSS, and the browser script bundled from
// TypeScript (it imports the roomcast client SDK) once, at startup.

import { join } from 'node:path';

export interface IPageAssets {
  html: string;
  css: string;
  js: string;
}

const PUBLIC_DIR = join(import.meta.dir, 'public');

export async function buildPage(): Promise<IPageAssets> {
  const build = await Bun.build({
    entrypoints: [join(PUBLIC_DIR, 'app.ts')],
    target: 'browser',
    format: 'esm',
    minify: true,
  });
  if (!build.success || !build.outputs[0]) {
    const reasons = build.logs.map((log) => String(log)).join('\n');
    throw new Error(`[demo] bundling the page script failed:\n${reasons}`);
  }
  const [html, css, js] = await Promise.all([
    Bun.file(join(PUBLIC_DIR, 'index.html')).text(),
    Bun.file(join(PUBLIC_DIR, 'styles.css')).text(),
    build.outputs[0].text(),
  ]);
  return { html, css, js };
}
