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
  });

  it('scans 100,000 levels without recursing', () => {
    expect(jsonNestingExceeds(nested(100_000))).toBe(true);
  });
});
