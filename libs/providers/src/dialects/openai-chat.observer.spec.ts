import { Errors } from '@gw/common';
import parallelChunks from '../translate/__fixtures__/parallel-tools.chunks.json';
import { OpenAIAdapter } from '../providers/openai/openai.adapter';
import { OpenAIChatObserver } from './openai-chat.observer';
import { dataOf, drive, meter, sseBytes } from './dialects.spec-helpers';

const adapter = new OpenAIAdapter();

describe('OpenAIChatObserver', () => {
  it('relays every event byte for byte and reads the usage chunk (kept when the client asked for usage)', () => {
    const m = meter();
    const chunks = sseBytes([...parallelChunks, '[DONE]']);
    const out = drive(new OpenAIChatObserver(m, adapter, true), chunks);
    expect(out).toBe(Buffer.concat(chunks).toString());
    expect(m.usageReported).toBe(true);
    expect(m.usage).toMatchObject({ inputTokens: 1200, outputTokens: 48, cachedTokens: 1024 });
  });

  it('drops the usage-only chunk when the client did not ask for usage, still metering it', () => {
    const m = meter();
    const out = drive(new OpenAIChatObserver(m, adapter, false), sseBytes([...parallelChunks, '[DONE]']));
    const data = dataOf(out);
    expect(data).toHaveLength(parallelChunks.length); // one dropped, [DONE] kept
    expect(data.some((d) => typeof d === 'object' && 'usage' in d!)).toBe(false);
    expect(m.usage.outputTokens).toBe(48);
  });

  it('counts content deltas (the estimate without usage) and accepts a stream that finished without [DONE]', () => {
    const m = meter();
    const o = new OpenAIChatObserver(m, adapter, false);
    const chunks = [
      { choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: '' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { reasoning_content: 'b' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    ];
    drive(o, sseBytes(chunks, 3));
    expect(o.deltas).toBe(2);
    expect(m.usageReported).toBe(false);
  });

  it('a stream with neither [DONE], a finish_reason nor usage was cut short', () => {
    const o = new OpenAIChatObserver(meter(), adapter, false);
    expect(() => drive(o, sseBytes([{ choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] }]))).toThrow('ended early');
  });

  it('relays what is not JSON as it is, and tells a failure with an error chunk', () => {
    const o = new OpenAIChatObserver(meter(), adapter, false);
    expect(o.events(['data: {"usage": {oops', ': comment'])).toBe('data: {"usage": {oops\n\n: comment\n\n');
    const frame = o.failure(Errors.upstream(502, 'local', 'stream failed: x', 'stream_error', 'server_error'));
    expect(dataOf(frame)[0]).toMatchObject({ error: { code: 'stream_error', type: 'server_error' } });
  });
});
