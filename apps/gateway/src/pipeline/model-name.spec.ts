import { INVALID_MODEL_MARKER, MAX_MODEL_CHARS, recordedModelName } from './model-name';

describe('recordedModelName', () => {
  it('keeps plausible model names', () => {
    for (const m of ['gpt-4o-mini', 'openai/gpt-4o', 'qwen2.5-coder:latest', 'a@b+c']) expect(recordedModelName(m)).toBe(m);
  });
  it('replaces anything else by a fixed marker', () => {
    for (const m of ['=HYPERLINK("x")', 'a b', 'x\u0000', 'x'.repeat(MAX_MODEL_CHARS + 1), 'é']) expect(recordedModelName(m)).toBe(INVALID_MODEL_MARKER);
  });
  it('records no model when none was given', () => {
    for (const m of [undefined, null, 42, '']) expect(recordedModelName(m)).toBeNull();
  });
});
