import { describe, expect, test } from 'bun:test';
import { DeadlineQueue } from '../../src/server/deadline-queue.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DeadlineQueue', () => {
  test('expires entries in the order they were added, each no earlier than its deadline', async () => {
    const expired: Array<{ item: string; late: number }> = [];
    const added = new Map<string, number>();
    // A deadline long beside the gaps between adds, so a loaded machine cannot expire
    // the first entry before the last is added.
    const queue = new DeadlineQueue<string>(200, (item) => {
      expired.push({ item, late: performance.now() - added.get(item)! });
    });
    for (const item of ['a', 'b', 'c']) {
      added.set(item, performance.now());
      queue.add(item);
      await sleep(10);
    }
    expect(queue.size).toBe(3);
    for (let waited = 0; expired.length < 3 && waited < 5_000; waited += 20) await sleep(20);
    expect(expired.map((e) => e.item)).toEqual(['a', 'b', 'c']);
    for (const { late } of expired) expect(late).toBeGreaterThanOrEqual(199);
    expect(queue.size).toBe(0);
  });

  test('a cancelled entry never expires, and the others still do', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<string>(30, (item) => expired.push(item));
    const first = queue.add('first');
    queue.add('second');
    queue.cancel(first);
    queue.cancel(first); // twice is harmless
    expect(queue.size).toBe(1);
    await sleep(60);
    expect(expired).toEqual(['second']);
  });

  test('cancelling every entry or clearing means nothing expires', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<string>(20, (item) => expired.push(item));
    queue.cancel(queue.add('x'));
    queue.add('y');
    queue.add('z');
    queue.clear();
    expect(queue.size).toBe(0);
    await sleep(50);
    expect(expired).toEqual([]);
  });

  test('an entry of another queue is not cancelled through this one', async () => {
    const expired: string[] = [];
    const a = new DeadlineQueue<string>(20, (item) => expired.push(`a:${item}`));
    const b = new DeadlineQueue<string>(20, (item) => expired.push(`b:${item}`));
    const entry = a.add('1');
    b.add('2');
    b.cancel(entry);
    expect([a.size, b.size]).toEqual([1, 1]);
    await sleep(50);
    expect(expired.sort()).toEqual(['a:1', 'b:2']);
  });

  test('entries added from inside onExpire get their own full deadline', async () => {
    const expired: Array<[string, number]> = [];
    const start = performance.now();
    const queue: DeadlineQueue<string> = new DeadlineQueue<string>(25, (item) => {
      expired.push([item, performance.now() - start]);
      if (item === 'first') queue.add('again');
    });
    queue.add('first');
    await sleep(90);
    expect(expired.map(([item]) => item)).toEqual(['first', 'again']);
    expect(expired[1]![1]).toBeGreaterThanOrEqual(49);
  });

  test('thousands of entries expire with a single timer and the queue empties', async () => {
    let count = 0;
    const queue = new DeadlineQueue<number>(20, () => count++);
    const entries = Array.from({ length: 5000 }, (_, i) => queue.add(i));
    for (let i = 0; i < entries.length; i += 2) queue.cancel(entries[i]!);
    expect(queue.size).toBe(2500);
    await sleep(60);
    expect(count).toBe(2500);
    expect(queue.size).toBe(0);
  });
});
