// Narrow unit test of the rooms-mode bookkeeping (src/bus/channel-subscriptions.ts) against a fake
// subscriber connection whose answers the test releases: rounds, failures, restore. Real Redis
// behaviour is covered by test/server/subscription-modes.test.ts.
import { describe, expect, test } from 'bun:test';
import { ChannelSubscriptions, type ISubscriberConnection } from '../../src/bus/channel-subscriptions.ts';

interface ICall {
  command: 'subscribe' | 'unsubscribe';
  channels: string[];
  answer(): void;
  fail(): void;
}

function fakeConnection() {
  const calls: ICall[] = [];
  const connection = {
    status: 'ready',
    subscribe: (...channels: string[]) => record('subscribe', channels),
    unsubscribe: (...channels: string[]) => record('unsubscribe', channels),
  } satisfies ISubscriberConnection;
  function record(command: ICall['command'], channels: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      calls.push({
        command,
        channels,
        answer: () => resolve(channels.length),
        fail: () => reject(new Error('down')),
      });
    });
  }
  return { connection, calls };
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Whether `promise` settled by now (after a few microtask turns). */
async function settled(promise: Promise<void> | undefined): Promise<boolean> {
  let done = false;
  void promise?.then(() => {
    done = true;
  });
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
}

describe('ChannelSubscriptions', () => {
  test("a turn's channels are one SUBSCRIBE; their waiters share one promise, settled by its answer", async () => {
    const { connection, calls } = fakeConnection();
    const subs = new ChannelSubscriptions(() => connection, silent);
    subs.acquire('a');
    subs.acquire('b');
    subs.acquire('b');
    const first = subs.whenSubscribed(['a']);
    const second = subs.whenSubscribed(['a', 'b']);
    expect(first).toBe(second);
    await turn();
    expect(calls.map((c) => [c.command, c.channels])).toEqual([['subscribe', ['a', 'b']]]);
    expect(await settled(first)).toBe(false);
    // Sent, not yet answered: a new waiter waits for the round in flight.
    const inFlight = subs.whenSubscribed(['b']);
    expect(inFlight).toBeDefined();
    calls[0]?.answer();
    expect(await settled(first)).toBe(true);
    expect(await settled(inFlight)).toBe(true);
    expect(subs.isSubscribed('a') && subs.isSubscribed('b')).toBe(true);
    expect(subs.whenSubscribed(['a', 'b'])).toBeUndefined();
    expect(subs.size).toBe(2);
  });

  test('acquired and released in one turn: no command; the last release unsubscribes', async () => {
    const { connection, calls } = fakeConnection();
    const subs = new ChannelSubscriptions(() => connection, silent);
    subs.acquire('a');
    subs.release('a');
    expect(subs.whenSubscribed(['a'])).toBeUndefined();
    await turn();
    expect(calls).toHaveLength(0);
    expect(subs.size).toBe(0);
    subs.acquire('b');
    await turn();
    calls[0]?.answer();
    await turn();
    subs.acquire('b');
    subs.release('b');
    await turn();
    expect(calls).toHaveLength(1);
    subs.release('b');
    await turn();
    expect(calls.map((c) => [c.command, c.channels])).toEqual([
      ['subscribe', ['b']],
      ['unsubscribe', ['b']],
    ]);
    expect(subs.isSubscribed('b')).toBe(false);
    expect(subs.size).toBe(0);
  });

  test('a failed SUBSCRIBE keeps its waiters until the restore after the reconnect is answered', async () => {
    const { connection, calls } = fakeConnection();
    const subs = new ChannelSubscriptions(() => connection, silent, ['fixed']);
    subs.acquire('a');
    const ready = subs.whenSubscribed(['a']);
    await turn();
    calls[0]?.fail();
    expect(await settled(ready)).toBe(false);
    expect(subs.isSubscribed('a')).toBe(false);
    // Released while down: not restored.
    subs.acquire('gone');
    subs.release('gone');
    const restored = subs.restore();
    expect(calls[1]?.channels).toEqual(['fixed', 'a']);
    expect(await settled(ready)).toBe(false);
    calls[1]?.answer();
    await restored;
    expect(await settled(ready)).toBe(true);
    expect(subs.isSubscribed('a')).toBe(true);
  });

  test('clear() releases every waiter', async () => {
    const { connection } = fakeConnection();
    const subs = new ChannelSubscriptions(() => connection, silent);
    subs.acquire('a');
    const ready = subs.whenSubscribed(['a']);
    await turn();
    subs.clear();
    expect(await settled(ready)).toBe(true);
    expect(subs.size).toBe(0);
  });
});
