import { describe, expect, test } from 'bun:test';
import { channelFor, decodeEnvelope, envelopeHead } from '../../src/bus/envelope.ts';

describe('Redis envelope', () => {
  test('channels follow the documented layout', () => {
    expect(channelFor('room', 'lobby')).toBe('ws:room:lobby');
    expect(channelFor('client', 'c1')).toBe('ws:client:c1');
    expect(channelFor('user', 'u1')).toBe('ws:user:u1');
    expect(channelFor('broadcast', undefined)).toBe('ws:broadcast');
  });

  test('accepts well-formed envelopes', () => {
    const ok = decodeEnvelope(
      JSON.stringify({
        serverId: 's',
        type: 'room',
        target: 'r',
        event: 'e',
        data: { a: 1 },
        exclude: ['x'],
      }),
    );
    expect(ok).toEqual({
      ok: true,
      message: { serverId: 's', type: 'room', target: 'r', event: 'e', data: { a: 1 }, exclude: ['x'] },
    });
    expect(decodeEnvelope(JSON.stringify({ serverId: 's', type: 'broadcast', event: 'e' })).ok).toBe(true);
  });

  test.each([
    ['not JSON', '{oops'],
    ['not an object', '[1,2]'],
    ['missing serverId', JSON.stringify({ type: 'room', target: 'r', event: 'e' })],
    ['unknown type', JSON.stringify({ serverId: 's', type: 'planet', target: 'r', event: 'e' })],
    ['missing event', JSON.stringify({ serverId: 's', type: 'room', target: 'r' })],
    ['missing target', JSON.stringify({ serverId: 's', type: 'client', event: 'e' })],
    [
      'exclude must be an array of strings',
      JSON.stringify({ serverId: 's', type: 'room', target: 'r', event: 'e', exclude: [1] }),
    ],
  ])('rejects: %s', (reason, raw) => {
    expect(decodeEnvelope(raw)).toEqual({ ok: false, reason });
  });
});

describe('encodeEnvelope with pre-serialized data', () => {
  test('produces the same JSON as serializing the whole envelope', async () => {
    const { encodeEnvelope } = await import('../../src/bus/envelope.ts');
    const message = {
      serverId: 's',
      type: 'room' as const,
      target: 'r"1',
      event: 'e',
      data: { a: [1, 'x'] },
      exclude: ['c'],
    };
    const fast = encodeEnvelope(message, JSON.stringify(message.data));
    expect(JSON.parse(fast)).toEqual(message);
    // Canonical (data last): the payload comes back as received, for the frame body.
    expect(decodeEnvelope(fast)).toEqual({ ok: true, message, dataJson: '{"a":[1,"x"]}' });
  });
});

describe('positioned envelopes (history rooms)', () => {
  const base = { serverId: 's', type: 'room', target: 'r', event: 'e', data: 1 };
  test('offset and epoch are kept for a room message', () => {
    const decoded = decodeEnvelope(JSON.stringify({ ...base, offset: 3, epoch: 'x' }));
    expect(decoded).toEqual({
      ok: true,
      message: { ...base, offset: 3, epoch: 'x' } as never,
      dataJson: '1',
    });
  });
  test.each([
    [{ offset: 0, epoch: 'x' }],
    [{ offset: 1.5, epoch: 'x' }],
    [{ offset: '1', epoch: 'x' }],
    [{ offset: 1 }],
    [{ epoch: 'x' }],
    [{ offset: 1, epoch: '' }],
    [{ offset: 1, epoch: 'x'.repeat(65) }],
    [{ offset: 1, epoch: 'x', type: 'broadcast' }],
  ])('an invalid position is malformed: %j', (extra) => {
    expect(decodeEnvelope(JSON.stringify({ ...base, ...extra }))).toEqual({
      ok: false,
      reason: 'invalid position',
    });
  });
  test('envelopeHead + the script tail give a valid envelope', () => {
    const head = envelopeHead({ serverId: 's', type: 'room', target: 'r', event: 'e' });
    const decoded = decodeEnvelope(`${head},"data":{"a":1},"offset":7,"epoch":"ep"}`);
    expect(decoded).toEqual({
      ok: true,
      message: {
        serverId: 's',
        type: 'room',
        target: 'r',
        event: 'e',
        data: { a: 1 },
        offset: 7,
        epoch: 'ep',
      },
      dataJson: '{"a":1}',
    });
  });
});
