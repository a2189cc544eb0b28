import { describe, expect, test } from 'bun:test';
import { MemoryHistoryStore } from '../../src/history/memory-store.ts';
import { readHistoryQuery, readSinceMap, resolveHistoryPolicy } from '../../src/history/policy.ts';

const policy = { size: 5, ttl: 1_000, metaTtl: 10_000 };
const all = { limit: 1_000, reverse: false };

function storeAt(): { store: MemoryHistoryStore; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { store: new MemoryHistoryStore(() => clock.now), clock };
}

describe('MemoryHistoryStore', () => {
  test('offsets from 1, +1 each; bounded by size; oldest first or newest first; limit', () => {
    const { store } = storeAt();
    const epoch = store.append('r', policy, 'e', '1').epoch;
    for (let i = 2; i <= 8; i++)
      expect(store.append('r', policy, 'e', String(i))).toEqual({ offset: i, epoch });
    const page = store.readNow('r', policy, all);
    expect(page.offset).toBe(8);
    expect(page.publications.map((p) => p.offset)).toEqual([4, 5, 6, 7, 8]);
    expect(store.readNow('r', policy, { limit: 2, reverse: true }).publications.map((p) => p.offset)).toEqual(
      [8, 7],
    );
    expect(
      store.readNow('r', policy, { limit: 2, reverse: false }).publications.map((p) => p.offset),
    ).toEqual([4, 5]);
  });

  test('since: served while retained, else retained false', () => {
    const { store } = storeAt();
    let epoch = '';
    for (let i = 1; i <= 8; i++) epoch = store.append('r', policy, 'e', undefined).epoch;
    const read = (offset: number, e = epoch) =>
      store.readNow('r', policy, { ...all, since: { offset, epoch: e } });
    expect(read(3).publications.map((p) => p.offset)).toEqual([4, 5, 6, 7, 8]);
    expect(read(6).publications.map((p) => p.offset)).toEqual([7, 8]);
    expect(read(8)).toEqual({ offset: 8, epoch, publications: [], retained: true });
    expect(read(2).retained).toBe(false); // 3 is gone
    expect(read(9).retained).toBe(false); // ahead of the room
    expect(read(6, 'other').retained).toBe(false);
    expect(read(2).publications).toEqual([]);
  });

  test('ttl drops old publications; an idle room is forgotten after metaTtl and gets a new epoch', () => {
    const { store, clock } = storeAt();
    const first = store.append('r', policy, 'e', '1');
    clock.now += 600;
    store.append('r', policy, 'e', '2');
    clock.now += 600; // offset 1 is now older than ttl
    expect(store.readNow('r', policy, all).publications.map((p) => p.offset)).toEqual([2]);
    expect(store.readNow('r', policy, { ...all, since: { offset: 0, epoch: first.epoch } }).retained).toBe(
      false,
    );
    expect(store.readNow('r', policy, { ...all, since: { offset: 1, epoch: first.epoch } }).retained).toBe(
      true,
    );
    clock.now += 1_000; // all expired, position kept
    expect(store.readNow('r', policy, { ...all, since: { offset: 2, epoch: first.epoch } })).toEqual({
      offset: 2,
      epoch: first.epoch,
      publications: [],
      retained: true,
    });
    clock.now += 20_000; // past metaTtl
    const fresh = store.readNow('r', policy, all);
    expect(fresh.offset).toBe(0);
    expect(fresh.epoch).not.toBe(first.epoch);
    store.stop();
  });

  test('remove forgets the room; a long run stays compact', async () => {
    const { store } = storeAt();
    for (let i = 0; i < 10_000; i++) store.append('r', policy, 'e', undefined);
    expect(store.readNow('r', policy, all).publications.length).toBe(5);
    await store.remove('r');
    expect(store.size).toBe(0);
  });
});

describe('policy and request validation', () => {
  test('resolveHistoryPolicy: null → none; bad answers throw clearly; metaTtl defaults to 24 h and is never below ttl', () => {
    expect(resolveHistoryPolicy(() => null, 'r', 'P')).toBeUndefined();
    expect(resolveHistoryPolicy(() => ({ size: 10, ttl: 5 }), 'r', 'P')).toEqual({
      size: 10,
      ttl: 5,
      metaTtl: 86_400_000,
    });
    expect(resolveHistoryPolicy(() => ({ size: 10, ttl: 5_000, metaTtl: 10 }), 'r', 'P')!.metaTtl).toBe(
      5_000,
    );
    for (const bad of [
      { size: 0, ttl: 1 },
      { size: 1.5, ttl: 1 },
      { size: 1, ttl: 0 },
      { size: 1e9, ttl: 1 },
      { size: 1, ttl: Number.NaN },
      'x',
    ]) {
      expect(() => resolveHistoryPolicy(() => bad as never, 'r', 'P')).toThrow(
        /P historyFn returned an invalid policy for room "r"/,
      );
    }
  });

  test('readSinceMap and readHistoryQuery', () => {
    expect(readSinceMap(undefined)).toBeUndefined();
    expect(readSinceMap({})?.size).toBe(0);
    expect(readSinceMap({ a: { offset: 0, epoch: 'e' } })?.get('a')).toEqual({ offset: 0, epoch: 'e' });
    expect(readSinceMap([])).toBeNull();
    expect(readSinceMap({ a: { offset: 1, epoch: 'e', extra: 1 } })?.get('a')).toEqual({
      offset: 1,
      epoch: 'e',
    });
    expect(readHistoryQuery({})).toEqual({ limit: 1_000, reverse: false });
    expect(readHistoryQuery({ limit: 5_000 })?.limit).toBe(1_000);
    expect(readHistoryQuery({ limit: -1 })).toBeUndefined();
    expect(readHistoryQuery({ reverse: 'yes' })).toBeUndefined();
    expect(readHistoryQuery({ since: { offset: 1 } })).toBeUndefined();
  });
});

describe('MemoryHistoryStore: rooms never published to', () => {
  test('a read creates nothing; its empty position stands for offset 0 of the first stream created within metaTtl', () => {
    const { store, clock } = storeAt();
    const empty = store.readNow('r', policy, all);
    expect(empty).toEqual({
      offset: 0,
      epoch: expect.stringMatching(/^~/),
      publications: [],
      retained: true,
    });
    expect(store.size).toBe(0);
    for (let i = 0; i < 1_000; i++) store.readNow(`r${i}`, policy, all);
    expect(store.size).toBe(0);
    const since = { offset: 0, epoch: empty.epoch };
    clock.now += 5;
    expect(store.readNow('r', policy, { ...all, since }).retained).toBe(true); // still no stream
    clock.now += 5;
    const first = store.append('r', policy, 'e', '1');
    store.append('r', policy, 'e', '2');
    const page = store.readNow('r', policy, { ...all, since });
    expect(page.retained).toBe(true);
    expect(page.epoch).toBe(first.epoch);
    expect(page.publications.map((p) => p.offset)).toEqual([1, 2]);
    store.stop();
  });

  test('an empty position is refused when a stream may have come and gone since: created metaTtl or more after it, removed, or from another generation', () => {
    const { store, clock } = storeAt();
    const empty = { offset: 0, epoch: store.readNow('r', policy, all).epoch };
    clock.now += policy.metaTtl; // a stream created and forgotten meanwhile cannot be excluded
    expect(store.readNow('r', policy, { ...all, since: empty }).retained).toBe(false);
    store.append('r', policy, 'e', '1');
    expect(store.readNow('r', policy, { ...all, since: empty }).retained).toBe(false);

    const fresh = { offset: 0, epoch: store.readNow('q', policy, all).epoch };
    store.append('q', policy, 'e', '1');
    expect(store.readNow('q', policy, { ...all, since: fresh }).retained).toBe(true);
    void store.remove('other'); // any removal starts a new generation
    expect(store.readNow('q', policy, { ...all, since: fresh }).retained).toBe(false);
    const otherProcess = new MemoryHistoryStore(() => clock.now);
    expect(otherProcess.readNow('q', policy, { ...all, since: fresh }).retained).toBe(false);
    const later = { offset: 0, epoch: `${fresh.epoch.split('.')[0]}.${clock.now + 1}` };
    expect(store.readNow('never', policy, { ...all, since: later }).retained).toBe(false);
    store.stop();
  });
});
