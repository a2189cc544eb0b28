// Cross-instance receive without re-serializing: the frame built around the `dataJson` that
// decodeEnvelope slices out of the envelope must be byte-for-byte the frame the old path built
// (parse the whole envelope, serialize `data` again), for every envelope shape our publishers
// write; every other shape must fall back to that path and decode to the same message.
import { describe, expect, test } from 'bun:test';
import { decodeEnvelope, encodeEnvelope, envelopeHead } from '../../src/bus/envelope.ts';
import type { IRedisSocketMessage } from '../../src/common/types.ts';
import { encodeFrame, frameFromJson, parseJsonSafely, serializeData } from '../../src/utils/json.ts';

const DATA: unknown[] = [
  0,
  -1.5e300,
  true,
  null,
  '',
  'plain',
  'quote " backslash \\ slash / newline \n tab \t',
  'unicode é 中文 😀 lone \ud800 surrogate',
  ',"data":{"x":1}',
  ',"offset":5,"epoch":"E"}',
  { nested: { data: 1, offset: 2, epoch: 'x' }, list: [1, 'a', null, { deep: [] }] },
  [{ data: ',"data":' }, [], {}],
  { offset: 5, epoch: 'E' },
  { '': 'empty key', 'k"ey': 'v' },
];

/** The old receive path's frame: parse the whole envelope, serialize `data` again. */
function oldFrame(raw: string): string {
  const whole = parseJsonSafely(raw) as { event: string; data: unknown };
  return encodeFrame(whole.event, whole.data);
}

/** Text parseJsonSafely might sanitize (a `\u` escape, a dangerous key name): built from the object instead. */
const SANITIZED = /__proto__|constructor|prototype|\\u/;

/** The frame the new receive path builds, and the message it decoded. */
function forwarded(raw: string): { frame: string; message: IRedisSocketMessage } {
  const decoded = decodeEnvelope(raw);
  if (!decoded.ok) throw new Error(decoded.reason);
  const { message, dataJson } = decoded;
  // Forwarded as received, unless the data's text needs the sanitizing parse.
  expect(dataJson === undefined).toBe(SANITIZED.test(raw));
  const frame =
    dataJson === undefined
      ? encodeFrame(message.event, message.data)
      : frameFromJson(message.event, dataJson);
  return { frame, message };
}

const heads: Array<Omit<IRedisSocketMessage, 'data'>> = [
  { serverId: 's1', type: 'room', target: 'lobby', event: 'chat' },
  { serverId: 's1', type: 'room', target: 'r,"data":', event: 'e"v', exclude: ['a', 'b,"data":'] },
  { serverId: 'emitter', type: 'client', target: 'c1', event: 'dm' },
  { serverId: 'emitter', type: 'user', target: 'u1', event: 'n', exclude: ['x'] },
  { serverId: 's2', type: 'broadcast', event: 'all' },
];

describe('the frame forwarded from an envelope equals the re-serialized one', () => {
  test('server send() envelopes (data serialized once, written last)', () => {
    for (const head of heads) {
      for (const data of DATA) {
        const raw = encodeEnvelope({ ...head, data }, serializeData(data));
        const { frame, message } = forwarded(raw);
        expect(frame).toBe(oldFrame(raw));
        expect(message).toEqual(decodeEnvelopeWhole(raw));
      }
    }
  });

  test('positioned envelopes as the history publish script writes them', () => {
    for (const data of DATA) {
      const head = envelopeHead({ serverId: 'emitter', type: 'room', target: 'h', event: 'm' });
      const raw = `${head},"data":${JSON.stringify(data)},"offset":42,"epoch":"Ab-3_x"}`;
      const { frame, message } = forwarded(raw);
      expect(frame).toBe(oldFrame(raw));
      expect(message.offset).toBe(42);
      expect(message.epoch).toBe('Ab-3_x');
      expect(message).toEqual(decodeEnvelopeWhole(raw));
    }
  });
});

describe('other shapes fall back to the whole parse, with the same result', () => {
  const fallbacks: Array<[string, string]> = [
    [
      'data before other keys (JSON.stringify of a whole message)',
      '{"serverId":"s","type":"room","target":"r","event":"e","data":{"a":1},"exclude":["x"]}',
    ],
    ['a duplicate data key', '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"data":2}'],
    [
      'a duplicate head key after data',
      '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"event":"z"}',
    ],
    [
      'whitespace around the data',
      '{"serverId":"s","type":"room","target":"r","event":"e","data": {"a":1} }',
    ],
    ['spaced separators', '{"serverId": "s", "type": "room", "target": "r", "event": "e", "data": 1}'],
    ['data first', '{"data":{"x":{"y":1,"data":2}},"serverId":"s","type":"room","target":"r","event":"e"}'],
    [
      'an escaped epoch',
      '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"offset":3,"epoch":"a\\"b"}',
    ],
    [
      'a dangerous key in the data',
      '{"serverId":"s","type":"room","target":"r","event":"e","data":{"__proto__":{"x":1},"k":2}}',
    ],
    ['no data', '{"serverId":"s","type":"broadcast","event":"e"}'],
  ];
  test.each(fallbacks)('%s', (_name, raw) => {
    const decoded = decodeEnvelope(raw);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.dataJson).toBeUndefined();
    expect(decoded.message).toEqual(decodeEnvelopeWhole(raw));
  });

  test('a bad data value or a bad position is still refused', () => {
    expect(decodeEnvelope('{"serverId":"s","type":"room","target":"r","event":"e","data":{oops}').ok).toBe(
      false,
    );
    const badPosition = decodeEnvelope(
      '{"serverId":"s","type":"client","target":"c","event":"e","data":1,"offset":3,"epoch":"E"}',
    );
    expect(badPosition).toEqual({ ok: false, reason: 'invalid position' });
    // Not JSON as a whole: a leading zero, a raw control character in the epoch.
    const leadingZero =
      '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"offset":07,"epoch":"E"}';
    expect(decodeEnvelope(leadingZero)).toEqual({ ok: false, reason: 'not JSON' });
    const control =
      '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"offset":7,"epoch":"E\tx"}';
    expect(decodeEnvelope(control)).toEqual({ ok: false, reason: 'not JSON' });
    const zero = decodeEnvelope(
      '{"serverId":"s","type":"room","target":"r","event":"e","data":1,"offset":0,"epoch":"E"}',
    );
    expect(zero).toEqual({ ok: false, reason: 'invalid position' });
  });
});

/** What decoding the whole parse gives (the reference): the same validation on the parsed object. */
function decodeEnvelopeWhole(raw: string): IRedisSocketMessage {
  // Wrapping in whitespace defeats the canonical split (the last character is not `}`).
  const decoded = decodeEnvelope(`${raw} `);
  if (!decoded.ok) throw new Error(decoded.reason);
  expect(decoded.dataJson).toBeUndefined();
  return decoded.message;
}
