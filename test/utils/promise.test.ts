import { describe, expect, test } from 'bun:test';
import { executePromiseWithLimit } from '../../src/index.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

describe('executePromiseWithLimit', () => {
  test('never has more than `limit` tasks in flight and keeps result order', async () => {
    let inFlight = 0;
    let peak = 0;
    const tasks = Array.from({ length: 25 }, (_, i) => async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await Bun.sleep((i * 7) % 5);
      inFlight--;
      return i * 2;
    });
    const results = await executePromiseWithLimit({ tasks, limit: 4 });
    expect(results).toEqual(Array.from({ length: 25 }, (_, i) => i * 2));
    expect(peak).toBe(4);
  });

  test('is a sliding window: the next task starts as soon as one finishes', async () => {
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const tasks = gates.map((gate, i) => async () => {
      started.push(i);
      await gate.promise;
      return i;
    });
    const run = executePromiseWithLimit({ tasks, limit: 2 });
    await Bun.sleep(1);
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve(); // the second finishes first: the third must start while the first still runs
    await Bun.sleep(1);
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.resolve();
    gates[2]!.resolve();
    expect(await run).toEqual([0, 1, 2]);
  });

  test('rejects on the first failure and starts nothing more', async () => {
    const started: number[] = [];
    const tasks = [0, 1, 2, 3].map((i) => async () => {
      started.push(i);
      if (i === 0) throw new Error('boom');
      await Bun.sleep(5);
      return i;
    });
    await expect(executePromiseWithLimit({ tasks, limit: 1 })).rejects.toThrow('boom');
    expect(started).toEqual([0]);
  });

  test('handles empty lists, synchronous throws and bad limits', async () => {
    expect(await executePromiseWithLimit({ tasks: [], limit: 3 })).toEqual([]);
    const syncThrow = () => {
      throw new Error('sync');
    };
    await expect(
      executePromiseWithLimit({ tasks: [syncThrow as () => Promise<number>], limit: 1 }),
    ).rejects.toThrow('sync');
    await expect(executePromiseWithLimit({ tasks: [async () => 1], limit: 0 })).rejects.toThrow('limit');
  });
});
