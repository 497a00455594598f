import { MAX_JSON_DEPTH, jsonNestingExceeds } from './json-depth';

const nested = (depth: number) => Buffer.from('['.repeat(depth) + ']'.repeat(depth));

describe('jsonNestingExceeds', () => {
  it('allows the limit and refuses one level more, arrays and objects alike', () => {
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonNestingExceeds(Buffer.from('{"a":'.repeat(3) + '1' + '}'.repeat(3)), 2)).toBe(true);
    expect(jsonNestingExceeds(Buffer.from('{"a":[1,{"b":2}],"c":{}}'), 3)).toBe(false);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(jsonNestingExceeds(Buffer.from(JSON.stringify({ a: '[[[[[[{{{{', b: 'x\\"[[[[' })), 1)).toBe(false);
    expect(jsonNestingExceeds(Buffer.from(JSON.stringify(['"[[[', ['\\']])), 2)).toBe(false);
    // A string that ends in an escaped backslash ends there: the brackets after it count.
    expect(jsonNestingExceeds(Buffer.from(JSON.stringify(['x\\', [[[1]]]])), 3)).toBe(true);
    expect(jsonNestingExceeds(Buffer.from(JSON.stringify(['x\\"', [[[1]]]])), 3)).toBe(true);
    expect(jsonNestingExceeds(Buffer.from(JSON.stringify(['x\\', [[1]]])), 3)).toBe(false);
  });

  it('measures real-shaped bodies by their structure, not by the brackets in their texts', () => {
    const body = JSON.stringify({
      input: Array.from({ length: 50 }, (_, i) => ({ content: [{ text: `say "hi" \\ [${i}] {` }] })),
      tools: [{ parameters: { a: { b: { c: [] } } } }],
    });
    // Its deepest path is root { tools [ { parameters { a { b { c [ : 7 levels; the brackets in the texts do not count.
    expect(jsonNestingExceeds(Buffer.from(body), 7)).toBe(false);
    expect(jsonNestingExceeds(Buffer.from(body), 6)).toBe(true);
  });

  it('scans 100,000 levels without recursing', () => {
    expect(jsonNestingExceeds(nested(100_000))).toBe(true);
  });
});
