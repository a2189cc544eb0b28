// Probe: the JavaScript heap one entry costs in the collections the `rooms` subscription mode keeps
// per channel (src/bus/channel-subscriptions.ts) and in ioredis' subscriber set (a copy of each
// channel name as an object key), and what a promise with its resolver costs. Heap after a full
// GC, before and after filling each with the same channel names (`ws:client:<uuid>`).
//   bun bench/probes/collection-entry-cost.ts [--keys 30000]

import { heapStats } from 'bun:jsc';

const at = process.argv.indexOf('--keys');
const KEYS = at >= 0 && Number(process.argv[at + 1]) > 0 ? Number(process.argv[at + 1]) : 30_000;
const names = Array.from({ length: KEYS }, () => `ws:client:${crypto.randomUUID()}`);

const heap = (): number => {
  Bun.gc(true);
  return heapStats().heapSize;
};

const kinds: Record<string, () => unknown> = {
  'Map<string, number> entry': () => {
    const map = new Map<string, number>();
    for (const name of names) map.set(name, 1);
    return map;
  },
  'Set<string> entry': () => {
    const set = new Set<string>();
    for (const name of names) set.add(name);
    return set;
  },
  'object key, name copied (ioredis SubscriptionSet)': () => {
    const keys: Record<string, true> = {};
    for (const name of names) keys[Buffer.from(name).toString()] = true;
    return keys;
  },
  'promise + resolver': () =>
    names.map(() => {
      let resolve: (() => void) | undefined;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      return { promise, resolve };
    }),
};

let kept: unknown;
for (const [kind, fill] of Object.entries(kinds)) {
  const before = heap();
  kept = fill();
  const after = heap();
  console.log(`${kind}: ${((after - before) / KEYS).toFixed(1)} B`);
  kept = undefined;
  heap();
}
void kept;
