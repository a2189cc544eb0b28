import { describe, expect, test } from 'bun:test';
import { decodeCommand, decodeInstanceMessage, encodeCommand } from '../../src/bus/commands.ts';

/** The bus messages of acknowledged sends to many: what is accepted, what is dropped. */
describe('deliverMany and its reports on the bus', () => {
  const base = { kind: 'deliverMany', event: 'ask', data: { n: 1 }, ackId: 'a1', timeout: 500 };

  test('a call to a room, a user or everyone decodes as sent; malformed calls are dropped', () => {
    for (const to of [{ room: 'ops' }, { userId: 'carol' }, {}]) {
      const message = { from: 's1', command: { ...base, to, exclude: ['c1'] } };
      expect(decodeCommand(encodeCommand(message as never))).toEqual(message as never);
    }
    const bad = [
      { ...base, to: 'ops' },
      { ...base, to: { room: 'ops', userId: 'u' } },
      { ...base, to: { room: 7 } },
      { ...base, to: { room: '' } },
      { ...base, to: {}, exclude: [1] },
      { ...base, to: {}, timeout: '5' },
      { ...base, to: {}, ackId: undefined },
    ];
    for (const command of bad) expect(decodeCommand(JSON.stringify({ from: 's1', command }))).toBeUndefined();
  });

  test('reports and answers: well-formed ones decode, others are dropped', () => {
    const delivered = { kind: 'delivered', ackId: 'a1', clients: ['c1', 'c2'], notAwaited: 3, single: true };
    expect(decodeInstanceMessage(JSON.stringify(delivered))).toEqual(delivered as never);
    const answer = { kind: 'answer', ackId: 'a1', clientId: 'c1', data: { ok: 1 } };
    expect(decodeInstanceMessage(JSON.stringify(answer))).toEqual(answer as never);
    expect(decodeInstanceMessage(JSON.stringify({ kind: 'ack', ackId: 'a1', data: 5 }))).toEqual({
      kind: 'ack',
      ackId: 'a1',
      data: 5,
    });
    for (const wrong of [
      { ...delivered, clients: [1] },
      { ...delivered, notAwaited: -1 },
      { ...delivered, notAwaited: 1.5 },
      { kind: 'answer', ackId: 'a1' },
      { kind: 'delivered', clients: [], notAwaited: 0 },
    ]) {
      expect(decodeInstanceMessage(JSON.stringify(wrong))).toBeUndefined();
    }
  });
});
