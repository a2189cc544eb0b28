import { appendFileSync } from 'node:fs';

/**
 * Prints one measured figure as a parseable line: `[figure] name=value`.
 * When `ROOMCAST_FIGURES_FILE` is set, the line is also appended to that file,
 * so a run can be collected for docs/reliability.md.
 */
export function figure(name: string, value: number | string): void {
  const shown = typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(1) : String(value);
  const line = `[figure] ${name}=${shown}`;
  console.log(line);
  const file = process.env.ROOMCAST_FIGURES_FILE;
  if (file) appendFileSync(file, `${line}\n`);
}

/** Collects `unhandledRejection` / `uncaughtException` while installed; `stop()` removes the listeners. */
export function watchProcessErrors(): { rejections: unknown[]; exceptions: unknown[]; stop: () => void } {
  const rejections: unknown[] = [];
  const exceptions: unknown[] = [];
  const onRejection = (reason: unknown) => {
    rejections.push(reason);
  };
  const onException = (error: unknown) => {
    exceptions.push(error);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    rejections,
    exceptions,
    stop: () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}

/** The resident set size after a full, synchronous garbage collection. */
export function rssAfterGc(): number {
  Bun.gc(true);
  Bun.gc(true);
  return process.memoryUsage().rss;
}

export const MB = 1024 * 1024;
