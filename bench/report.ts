// Re-renders docs/benchmarks.md and docs/benchmarks.svg from a run's JSON
// without running anything: bun bench/report.ts [docs/benchmarks.json]

import { printTables, renderDocs } from './lib/report.ts';
import type { IRunResult } from './lib/types.ts';

const path = process.argv[2] ?? new URL('../docs/benchmarks.json', import.meta.url).pathname;
const run = (await Bun.file(path).json()) as IRunResult;
await renderDocs(run);
printTables(run);
console.log(`\nrendered docs/benchmarks.md and docs/benchmarks.svg from ${path}`);
