import { OpenAIError } from '@gw/common';
import { dataOf, drive, meter, provider, sseBytes } from '../dialects/dialects.spec-helpers';
import { CompactedFromChatJson, CompactionFromChatJson, CompactionFromChatObserver, CompactionOrigin } from './compaction-from-chat.dialect';

const origin: CompactionOrigin = { responseId: 'resp_abc', model: 'team-model', createdAt: 1_700_000_000, seal: (s) => `sealed(${s})` };
const chunk = (delta: object, finish: string | null = null) => ({
  id: 'c',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usage = { id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 100, completion_tokens: 7, total_tokens: 107 } };

describe('CompactionFromChatObserver', () => {
  it('answers the summary as exactly one compaction output item, then response.completed with the usage', () => {
    const m = meter();
    const out = drive(
      new CompactionFromChatObserver(m, provider({ responsesNative: false }), origin),
      sseBytes([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Did ' }), chunk({ content: 'X.' }), chunk({}, 'stop'), usage, '[DONE]']),
    );
    const events = dataOf(out) as any[];
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    const done = events.filter((e) => e.type === 'response.output_item.done');
    expect(done).toHaveLength(1);
    expect(done[0].item).toEqual({ type: 'compaction', id: 'cmp_abc', encrypted_content: 'sealed(Did X.)' });
    expect(events.at(-1).response).toMatchObject({
      id: 'resp_abc',
      status: 'completed',
      model: 'team-model',
      output: [done[0].item],
      usage: { input_tokens: 100, output_tokens: 7 },
    });
    expect(m.usageReported).toBe(true);
  });

  it('never reports a cut-short stream completed, and tells a failure as response.failed', () => {
    const o = new CompactionFromChatObserver(meter(), provider({ responsesNative: false }), origin);
    expect(() => drive(o, sseBytes([chunk({ content: 'Did' })]))).toThrow('ended before it finished');
    const failed = dataOf(o.failure(new OpenAIError(502, 'gone', 'server_error', 'stream_error'))) as any[];
    expect(failed[0]).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'stream_error', message: 'gone' } } });
  });

  it('an answer with no text still yields the one item Codex expects', () => {
    const out = drive(new CompactionFromChatObserver(meter(), provider({ responsesNative: false }), origin), sseBytes([chunk({}, 'stop'), '[DONE]']));
    const done = (dataOf(out) as any[]).filter((e) => e.type === 'response.output_item.done');
    expect(done[0].item.encrypted_content).toBe('sealed((no summary was produced))');
  });
});

describe('compaction JSON answers', () => {
  const answer = {
    id: 'c',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Sum.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 50, completion_tokens: 3, total_tokens: 53 },
  };

  it('a non-stream /v1/responses compaction: a response whose one output item is the compaction', () => {
    const r = JSON.parse(new CompactionFromChatJson(origin).rewrite(answer));
    expect(r).toMatchObject({
      object: 'response',
      status: 'completed',
      output: [{ type: 'compaction', encrypted_content: 'sealed(Sum.)' }],
      usage: { input_tokens: 50, output_tokens: 3 },
    });
  });

  it('/v1/responses/compact: the user messages, then the compaction item', () => {
    const request = {
      model: 'm',
      input: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
      ],
    };
    const r = JSON.parse(new CompactedFromChatJson(origin, request).rewrite(answer));
    expect(r).toMatchObject({ id: 'resp_abc', object: 'response.compaction', created_at: 1_700_000_000, usage: { total_tokens: 53 } });
    expect(r.output).toEqual([
      { role: 'user', content: 'a' },
      { type: 'compaction', id: 'cmp_abc', encrypted_content: 'sealed(Sum.)' },
    ]);
  });
});
