import type { Subprocess } from 'bun';
import { type Browser, chromium, type Page } from 'playwright-core';

const BUN = './node_modules/.bin/bun';

/** The flags CI uses: no sandbox (containers), no GPU, nothing that phones home. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    timeout: 15_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

export interface IDemoProcess {
  url: string;
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM (graceful stop), SIGKILL if it is not gone within 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs the demo exactly as `npm start` does, in its own process, on a port the
 * OS picks, and waits for the line announcing its URL.
 */
export async function startDemo(env: Record<string, string> = {}): Promise<IDemoProcess> {
  const proc = Bun.spawn([BUN, 'examples/demo/main.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', REDIS_URL: '', DEMO_ENCRYPTION: '', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  // Drained continuously so a chatty process never blocks on a full pipe.
  const stdout = pump(proc.stdout);
  const stderr = pump(proc.stderr);
  let stopped: Promise<number | null> | undefined;
  const demo: IDemoProcess = {
    url: '',
    proc,
    output: () => stdout.text() + stderr.text(),
    stop: () => {
      stopped ??= (async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
        proc.kill('SIGTERM');
        const exited = await Promise.race([proc.exited, Bun.sleep(5_000).then(() => undefined)]);
        if (exited !== undefined) return exited;
        proc.kill('SIGKILL');
        await proc.exited;
        return null;
      })();
      return stopped;
    },
  };
  try {
    demo.url = await waitFor(stdout, /open (http:\/\/127\.0\.0\.1:\d+)/, 15_000);
  } catch (error) {
    await demo.stop();
    throw new Error(`${(error as Error).message}\nstderr: ${stderr.text()}`);
  }
  return demo;
}

/** Runs the announce CLI in its own process; resolves with its output once it exits (bounded). */
export async function runAnnounce(
  args: string[],
  redisUrl: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const proc = Bun.spawn([BUN, 'examples/demo/announce.ts', ...args], {
    env: { ...process.env, REDIS_URL: redisUrl },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  try {
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, out, err };
  } finally {
    clearTimeout(timer);
  }
}

/** Opens the demo in a fresh browser context (its own storage, like another person) and signs in. */
export async function openAs(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(8_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.fill('#name', name);
  await page.click('#sign-in-form button[type="submit"]');
  try {
    await page.waitForSelector('#chat:not([hidden])');
    await page.waitForSelector('#connection[data-state="connected"]');
  } catch (error) {
    throw new Error(
      `${name} could not sign in (${(error as Error).message}); page errors: ${errors.join('; ')}`,
    );
  }
  return page;
}

export async function say(page: Page, text: string): Promise<void> {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
}

/** Waits until a chat line with `text` is shown (in the room currently open). */
export async function expectMessage(page: Page, text: string): Promise<void> {
  await page.locator('#messages li', { hasText: text }).first().waitFor();
}

/** The text of every chat line shown in the open room, in order (system lines left out). */
export async function chatLines(page: Page): Promise<string[]> {
  return page
    .locator('#messages li:not(.system)')
    .evaluateAll((items) => items.map((item) => item.childNodes[1]?.textContent?.trim() ?? ''));
}

/** The names listed under "Online in #room", sorted. */
export async function onlineNames(page: Page): Promise<string[]> {
  const names = await page
    .locator('#members li')
    .evaluateAll((items) => items.map((item) => item.firstChild?.textContent?.trim() ?? ''));
  return names.sort();
}

/** Reads a stream to its end in the background; `text()` is what arrived so far. */
export function pump(stream: ReadableStream<Uint8Array>): { text: () => string } {
  let text = '';
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })().catch(() => {});
  return { text: () => text };
}

async function waitFor(output: { text: () => string }, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(output.text());
    if (match) return match[1]!;
    await Bun.sleep(25);
  }
  throw new Error(`the demo did not print its URL within ${timeoutMs} ms; stdout: ${output.text()}`);
}

/** Re-reads `read()` until it equals `expected` (deep, via JSON); fails with the last value seen. */
export async function eventuallyEqual<T>(
  read: () => Promise<T>,
  expected: T,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `expected ${JSON.stringify(expected)} within ${timeoutMs} ms, last saw ${JSON.stringify(last)}`,
      );
    }
    await Bun.sleep(50);
  }
}
