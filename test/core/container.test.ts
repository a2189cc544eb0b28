import { describe, expect, test } from 'bun:test';
import { Container } from '../../src/core/index.ts';

describe('Container', () => {
  test('bind().toValue() then get() returns the same value; rebinding replaces it', () => {
    const container = new Container();
    const handler = () => 1;
    container.bind<() => number>({ key: 'handler' }).toValue(handler);
    expect(container.get<() => number>({ key: 'handler' })).toBe(handler);
    container.bind({ key: 'handler' }).toValue('other');
    expect(container.get<string>({ key: 'handler' })).toBe('other');
  });

  test('a missing key throws with its name unless isOptional is set', () => {
    const container = new Container();
    expect(() => container.get({ key: '@app/nothing' })).toThrow('Nothing is bound to "@app/nothing"');
    expect(container.get({ key: '@app/nothing', isOptional: true })).toBeUndefined();
  });

  test('null and undefined are real values: the key counts as bound', () => {
    const container = new Container();
    container.bind({ key: 'n' }).toValue(null);
    container.bind({ key: 'u' }).toValue(undefined);
    expect(container.isBound({ key: 'n' })).toBe(true);
    expect(container.isBound({ key: 'u' })).toBe(true);
    expect(container.get({ key: 'n' })).toBeNull();
    expect(container.get({ key: 'u' })).toBeUndefined();
  });

  test('a binding without a value is not bound; unbind() removes one', () => {
    const container = new Container();
    container.bind({ key: 'half' });
    expect(container.isBound({ key: 'half' })).toBe(false);
    expect(() => container.get({ key: 'half' })).toThrow('Nothing is bound');
    container.bind({ key: 'k' }).toValue(1);
    expect(container.unbind({ key: 'k' })).toBe(true);
    expect(container.isBound({ key: 'k' })).toBe(false);
  });

  test('an empty key is refused', () => {
    const container = new Container();
    expect(() => container.bind({ key: '' })).toThrow('non-empty string');
    expect(() => container.get({ key: '' })).toThrow('non-empty string');
  });
});
