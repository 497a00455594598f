import { forwardedBytes } from './forwarded-bytes';

/** What the pipeline builds for a target: a shallow copy of the client's body with the model rewritten. */
const retarget = (client: Record<string, unknown>, model: string) => ({ ...client, model });
const bytes = (s: string) => Buffer.from(s);

describe('forwardedBytes: the client bytes with only the model changed', () => {
  const text = '{"model":"mini-alias","input":[{"role":"user","content":"héllo \\u001b[0m ✓"}],"stream":true,"tools":[{"type":"function","name":"exec"}]}';
  const client = JSON.parse(text);

  it('splices the routed model into the bytes; everything else is the client own bytes', () => {
    const out = forwardedBytes(bytes(text), client, retarget(client, 'gpt-4o-mini'))!;
    expect(out.toString()).toBe(text.replace('"mini-alias"', '"gpt-4o-mini"'));
    expect(JSON.parse(out.toString())).toEqual({ ...client, model: 'gpt-4o-mini' });
  });

  it('forwards the very buffer when the model is unchanged, and tolerates leading whitespace', () => {
    const raw = bytes(text);
    expect(forwardedBytes(raw, client, retarget(client, 'mini-alias'))).toBe(raw);
    const spaced = bytes(`\n  ${text}`);
    expect(forwardedBytes(spaced, client, retarget(client, 'x'))!.toString()).toBe(`\n  ${text.replace('"mini-alias"', '"x"')}`);
  });

  it('a value the pipeline changed, added or removed means re-serialising', () => {
    expect(forwardedBytes(bytes(text), client, { ...client, model: 'm', stream_options: { include_usage: true } })).toBeUndefined();
    expect(forwardedBytes(bytes(text), client, { ...client, model: 'm', input: [...client.input] })).toBeUndefined();
    const { tools: _tools, ...without } = client;
    expect(forwardedBytes(bytes(text), client, { ...without, model: 'm' })).toBeUndefined();
    expect(forwardedBytes(bytes(text), client, { ...client, model: 'm', extra: undefined })).toBeUndefined();
  });

  it('the model key must come first, spelled plainly, with the parsed value', () => {
    const late = '{"input":"hi","model":"mini-alias"}';
    expect(forwardedBytes(bytes(late), JSON.parse(late), retarget(JSON.parse(late), 'm'))).toBeUndefined();
    const spaced = '{ "model": "mini-alias", "input": "hi"}';
    expect(forwardedBytes(bytes(spaced), JSON.parse(spaced), retarget(JSON.parse(spaced), 'm'))).toBeUndefined();
    const escapedValue = '{"model":"mini\\u002dalias","input":"hi"}';
    expect(JSON.parse(escapedValue).model).toBe('mini-alias');
    expect(forwardedBytes(bytes(escapedValue), JSON.parse(escapedValue), retarget(JSON.parse(escapedValue), 'm'))).toBeUndefined();
  });

  it.each([
    ['a duplicate key', '{"model":"cheap","input":"hi","model":"cheap"}'],
    ['a duplicate key spelled with escapes', '{"model":"cheap","input":"hi","\\u006dodel":"cheap"}'],
    ['a duplicate key spelled with an upper-case escape', '{"model":"cheap","input":"hi","mo\\u0064el":"cheap"}'],
    ['another key twice (a parser keeping the first would read `background: true`)', '{"model":"cheap","background":true,"input":"hi","background":false}'],
    ['another key twice, once escaped', '{"model":"cheap","stream":true,"input":"hi","\\u0073tream":false}'],
  ])('%s: never forwarded, so the upstream reads only the values the gateway read', (_label, text) => {
    const parsed = JSON.parse(text);
    expect(forwardedBytes(bytes(text), parsed, retarget(parsed, 'routed'))).toBeUndefined();
  });

  it('nested keys, escaped quotes and backslashes in values do not count as top-level keys', () => {
    const text = '{"model":"cheap","input":[{"model":"x","stream":true,"t":"a \\"q\\" \\\\","k":{"background":1}}],"s":"\\\\"}';
    const parsed = JSON.parse(text);
    expect(Object.keys(parsed)).toEqual(['model', 'input', 's']);
    expect(forwardedBytes(bytes(text), parsed, retarget(parsed, 'routed'))!.toString()).toBe(text.replace('"cheap"', '"routed"'));
  });

  it('no bytes (not UTF-8, another charset, a WebSocket call), or no string model: undefined', () => {
    expect(forwardedBytes(undefined, client, retarget(client, 'm'))).toBeUndefined();
    expect(forwardedBytes(bytes(text), client, { ...client, model: 1 })).toBeUndefined();
    expect(forwardedBytes(bytes('{"model":1}'), { model: 1 }, { model: 'm' })).toBeUndefined();
  });
});
