import type { IFleetRoom } from './types.ts';

/**
 * The `n` largest of `rooms` (largest first, ties by name), kept in a sorted array of at most
 * `n`: one pass, no array of every room.
 */
export function largestRooms(rooms: Iterable<IFleetRoom>, n: number): IFleetRoom[] {
  const top: IFleetRoom[] = [];
  if (n <= 0) return top;
  for (const entry of rooms) {
    if (entry.members <= 0) continue;
    if (top.length === n && !ranksBefore(entry, top[n - 1]!)) continue;
    let at = top.length;
    while (at > 0 && ranksBefore(entry, top[at - 1]!)) at--;
    top.splice(at, 0, entry);
    if (top.length > n) top.pop();
  }
  return top;
}

function ranksBefore(a: IFleetRoom, b: IFleetRoom): boolean {
  return a.members > b.members || (a.members === b.members && a.room < b.room);
}

/** Sums the rooms announced by several instances and keeps the `n` largest. */
export function mergeRooms(lists: Iterable<readonly IFleetRoom[]>, n: number): IFleetRoom[] {
  const sums = new Map<string, number>();
  for (const list of lists) {
    for (const { room, members } of list) sums.set(room, (sums.get(room) ?? 0) + members);
  }
  return largestRooms(
    (function* () {
      for (const [room, members] of sums) yield { room, members };
    })(),
    n,
  );
}
