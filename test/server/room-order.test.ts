import { afterEach, describe, expect, test } from 'bun:test';
import { closeAllClients, trackedClient, waitForState } from '../client/support.ts';
import { serverPerTest } from '../support/server.ts';
import { type IFrame, TestClient } from '../support/ws-client.ts';

const serve = serverPerTest();
afterEach(closeAllClients);

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

/** validateRoomFn granting everything after a random delay (0–8 ms), so later requests could overtake. */
function slowValidator(seed: number) {
  const next = random(seed);
  return ({ rooms }: { rooms: string[] }) =>
    new Promise<string[]>((resolve) => setTimeout(() => resolve(rooms), Math.floor(next() * 8)));
}

/** 60 operations over three rooms, each room's sequence alternating join / leave, starting with join. */
function operations(): Array<{ verb: 'join' | 'leave'; room: string }> {
  const steps: Array<{ verb: 'join' | 'leave'; room: string }> = [];
  const joined = new Map<string, boolean>();
  const next = random(7);
  for (let n = 0; n < 60; n++) {
    const room = ['a', 'b', 'c'][Math.floor(next() * 3)]!;
    const verb = joined.get(room) ? 'leave' : 'join';
    joined.set(room, verb === 'join');
    steps.push({ verb, room });
  }
  return steps;
}

function expectedMembership(steps: Array<{ verb: 'join' | 'leave'; room: string }>): string[] {
  const inside = new Set<string>();
  for (const { verb, room } of steps) {
    if (verb === 'join') inside.add(room);
    else inside.delete(room);
  }
  return [...inside].sort();
}

describe('pipelined room requests from one connection', () => {
  test('with an async validateRoomFn, each room’s requests apply and answer in the order sent, each with its id', async () => {
    const { url, helper } = await serve({
      validateRoomFn: slowValidator(3),
      limits: { maxPendingRequests: 64 },
    });
    const client = await TestClient.authenticated(url);
    const steps = operations();
    steps.forEach(({ verb, room }, n) => {
      client.send({ event: verb, data: { rooms: [room] }, id: `op${n}` });
    });
    const roomReplies = () => client.frames.filter((f) => f.event === 'join' || f.event === 'leave');
    await client.until(() => roomReplies().length >= steps.length, 'every answer', 10_000);
    await client.fence();
    const replies: IFrame[] = roomReplies();
    expect(replies).toHaveLength(steps.length);
    // Every request answered once, with its id and the room it changed.
    expect(replies.map((f) => f.id).sort()).toEqual(steps.map((_, n) => `op${n}`).sort());
    for (const reply of replies) {
      const step = steps[Number(String(reply.id).slice(2))]!;
      expect(reply.event).toBe(step.verb);
      expect(reply.data).toEqual({ rooms: [step.room] });
    }
    // Per room, the answers come in the order the requests were sent.
    for (const room of ['a', 'b', 'c']) {
      const sent = steps.flatMap((s, n) => (s.room === room ? [`op${n}`] : []));
      const answered = replies
        .filter((f) => (f.data as { rooms: string[] }).rooms[0] === room)
        .map((f) => f.id);
      expect(answered).toEqual(sent);
    }
    const [server] = [...helper.getClients().values()];
    const named = [...(server?.rooms ?? [])].filter((r) => ['a', 'b', 'c'].includes(r)).sort();
    expect(named).toEqual(expectedMembership(steps));
  });

  test('requests waiting behind a pending validation count against maxPendingRequests', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { url } = await serve({
      validateRoomFn: async ({ rooms }) => {
        await gate;
        return rooms;
      },
      limits: { maxPendingRequests: 4 },
    });
    const client = await TestClient.authenticated(url);
    for (let n = 0; n < 6; n++) client.send({ event: 'join', data: { rooms: [`r${n}`] }, id: `j${n}` });
    const refused = await client.next('error', () => true, 5_000);
    expect(refused.id).toBe('j4');
    expect((refused.data as { code: string }).code).toBe('TOO_MANY_PENDING');
    release();
    const granted: unknown[] = [];
    await client.until(() => client.all('join').length >= 4, 'four joins');
    for (const frame of client.all('join')) granted.push(frame.id);
    expect(granted).toEqual(['j0', 'j1', 'j2', 'j3']);
    expect(client.all('error').map((f) => f.id)).toEqual(['j4', 'j5']);
  });

  test('the SDK sends room requests without waiting: join / leave / join of the same and other rooms end right', async () => {
    const { url, helper } = await serve({
      validateRoomFn: slowValidator(11),
      limits: { maxPendingRequests: 64 },
    });
    const { client, errors } = trackedClient(url);
    await waitForState(client, 'connected');
    const steps = operations();
    const answers = await Promise.all(steps.map(({ verb, room }) => client[verb](room)));
    answers.forEach((rooms, n) => {
      expect(rooms).toEqual([steps[n]!.room]);
    });
    const expected = expectedMembership(steps);
    expect([...client.joinedRooms].filter((r) => ['a', 'b', 'c'].includes(r)).sort()).toEqual(expected);
    const [server] = [...helper.getClients().values()];
    expect([...(server?.rooms ?? [])].filter((r) => ['a', 'b', 'c'].includes(r)).sort()).toEqual(expected);
    expect(errors).toEqual([]);
  });
});
