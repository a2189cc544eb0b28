import { describe, expect, test } from 'bun:test';
import { encodeFrame, parseJsonObject, parseJsonSafely } from '../../src/utils/json.ts';

describe('parseJsonSafely', () => {
  test('drops prototype-reaching keys at any depth', () => {
    const parsed = parseJsonSafely(
      '{"event":"x","data":{"__proto__":{"polluted":true},"nested":{"constructor":{"prototype":{"p":1}},"ok":1}}}',
    ) as { data: Record<string, unknown> };
    expect(Object.hasOwn(parsed.data, '__proto__')).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(parsed.data.nested).toEqual({ ok: 1 });
  });

  test('catches keys spelled with unicode escapes', () => {
    const parsed = parseJsonSafely(
      '{"data":{"\\u005f_proto__":{"polluted":true},"\\u0063onstructor":1,"ok":"\\u0041"}}',
    ) as {
      data: Record<string, unknown>;
    };
    expect(Object.keys(parsed.data)).toEqual(['ok']);
    expect(parsed.data.ok).toBe('A');
  });

  test('parses ordinary text unchanged and throws on invalid JSON', () => {
    expect(parseJsonSafely('{"event":"a","data":[1,2]}')).toEqual({ event: 'a', data: [1, 2] });
    expect(() => parseJsonSafely('{nope')).toThrow();
  });
});

describe('parseJsonObject', () => {
  test('an object comes back (dangerous keys dropped); anything else is undefined, never a throw', () => {
    expect(parseJsonObject('{"a":1,"__proto__":{"x":1}}')).toEqual({ a: 1 });
    for (const text of ['[1]', '"s"', '3', 'null', '{', '', 'not json']) {
      expect(parseJsonObject(text)).toBeUndefined();
    }
  });
});

describe('encodeFrame', () => {
  test('omits undefined data', () => {
    expect(encodeFrame('a', undefined)).toBe('{"event":"a"}');
    expect(encodeFrame('a', null)).toBe('{"event":"a","data":null}');
  });
});

describe('frameFromJson', () => {
  test('matches JSON.stringify of the frame object', async () => {
    const { frameFromJson } = await import('../../src/utils/json.ts');
    const data = { quote: 'say "hi"', n: [1, null] };
    expect(frameFromJson('ev"ent', JSON.stringify(data))).toBe(JSON.stringify({ event: 'ev"ent', data }));
    expect(frameFromJson('e', undefined)).toBe('{"event":"e"}');
  });

  test('appends an echoed request id, escaped, and only when given', () => {
    expect(encodeFrame('join', { rooms: [] }, 'r"1')).toBe(
      JSON.stringify({ event: 'join', data: { rooms: [] }, id: 'r"1' }),
    );
    expect(encodeFrame('error', undefined, 'x')).toBe('{"event":"error","id":"x"}');
    expect(encodeFrame('join', 1, undefined)).toBe('{"event":"join","data":1}');
  });
});
