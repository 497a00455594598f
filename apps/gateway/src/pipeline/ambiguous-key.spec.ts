import { ambiguousKey } from './ambiguous-key';

describe('ambiguousKey: keys another parser may read as one the gateway read', () => {
  it.each([
    ['"Model" beside "model" (Go keeps the last, case-insensitively)', { model: 'llama3.2:1b', messages: [], Model: 'llama3.1:405b' }, 'Model'],
    ['"STREAM" alone: a field the gateway reads', { model: 'm', STREAM: true }, 'STREAM'],
    ['a long s folding to "stream"', { model: 'm', ſtream: true }, 'ſtream'],
    ['a Kelvin sign folding to a key present', { model: 'm', mas_k: 1, ['mas_\u212a']: 2 }, 'mas_\u212a'],
    ['an unknown field beside its lower-case twin', { model: 'm', Foo: 1, foo: 2 }, 'Foo'],
  ])('%s', (_label, body, key) => {
    expect(ambiguousKey(body as Record<string, unknown>)).toBe(key);
  });

  it('lower-case keys, and unknown keys in another case alone, are fine', () => {
    expect(ambiguousKey({ model: 'm', messages: [], stream: true, max_tokens: 5, metadata: { Model: 'x' } })).toBeUndefined();
    expect(ambiguousKey({ model: 'm', X_Custom: 1 })).toBeUndefined();
  });
});
