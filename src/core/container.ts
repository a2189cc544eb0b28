/**
 * A key-based binding container: the application's registry of configuration
 * values and handlers. Components look up what they need by key, so an
 * application configures a component without calling its constructor.
 */

/** The fluent half of `bind()`: says what the key resolves to. */
export class Binding<T> {
  private bound?: { value: T };

  constructor(readonly key: string) {}

  /** The key resolves to this exact value (`null` and `undefined` included). */
  toValue(value: T): this {
    this.bound = { value };
    return this;
  }

  get hasValue(): boolean {
    return this.bound !== undefined;
  }

  getValue(): T {
    if (!this.bound) throw new Error(`[Container] Binding "${this.key}" has no value: call toValue()`);
    return this.bound.value;
  }
}

export class Container {
  private readonly bindings = new Map<string, Binding<unknown>>();

  /** Creates (or replaces) the binding for `key`; complete it with `toValue()`. */
  bind<T>(opts: { key: string }): Binding<T> {
    const key = requireKey(opts?.key);
    const binding = new Binding<T>(key);
    this.bindings.set(key, binding as Binding<unknown>);
    return binding;
  }

  /** True when `key` has a value, even if that value is `null` or `undefined`. */
  isBound(opts: { key: string }): boolean {
    return this.bindings.get(opts.key)?.hasValue === true;
  }

  unbind(opts: { key: string }): boolean {
    return this.bindings.delete(opts.key);
  }

  /** The value bound to `key`. Throws when nothing is bound, unless `isOptional` is set. */
  get<T>(opts: { key: string; isOptional?: false }): T;
  get<T>(opts: { key: string; isOptional: true }): T | undefined;
  get<T>(opts: { key: string; isOptional?: boolean }): T | undefined {
    const binding = this.bindings.get(requireKey(opts?.key));
    if (!binding?.hasValue) {
      if (opts.isOptional) return undefined;
      throw new Error(`[Container] Nothing is bound to "${opts.key}"`);
    }
    return binding.getValue() as T;
  }
}

function requireKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new Error('[Container] A binding key must be a non-empty string');
  }
  return key;
}
