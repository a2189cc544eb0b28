/** True when running on Bun (the server helper and the component need Bun's native WebSockets). */
export function isBunRuntime(scope: object = globalThis): boolean {
  return typeof (scope as { Bun?: unknown }).Bun !== 'undefined';
}

/** Throws a clear error naming `owner` when not running on Bun. */
export function assertBunRuntime(owner: string, scope: object = globalThis): void {
  if (!isBunRuntime(scope)) {
    throw new Error(
      `[${owner}] Bun runtime required: this uses Bun native WebSockets and does not run on Node.js`,
    );
  }
}
