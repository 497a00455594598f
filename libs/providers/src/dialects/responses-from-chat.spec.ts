import { Errors, OpenAIError } from '@gw/common';
import customChunks from '../translate/__fixtures__/custom-tool.chunks.json';
import parallelChunks from '../translate/__fixtures__/parallel-tools.chunks.json';
import completion from '../translate/__fixtures__/chat-completion.json';
import { ResponsesFromChatObserver } from './responses-from-chat.observer';
import { ResponsesFromChatTranslator } from './responses-from-chat.translator';
import { dataOf, drive, meter, provider, sseBytes } from './dialects.spec-helpers';

const origin = { requestId: 'req_abc', model: 'qwen3-coder', startedAt: new Date(1_700_000_000_000) };
const request = { model: 'qwen3-coder', input: 'list the files', tools: [{ type: 'function', name: 'exec_command', parameters: { type: 'object' } }] };

describe('ResponsesFromChatTranslator', () => {
  it('translates the request once, and a completion into a response object named after our request', () => {
    const t = new ResponsesFromChatTranslator(request, origin);
    expect(t.chat.chat.messages.length).toBeGreaterThan(0);
    const response = JSON.parse(t.rewrite(completion));
    expect(response).toMatchObject({ id: 'resp_abc', object: 'response', model: 'qwen3-coder', created_at: 1_700_000_000 });
  });

  it('an error chunk is the upstream 502, with secrets scrubbed', () => {
    const p = provider();
    const e = ResponsesFromChatTranslator.chunkError({ error: { message: 'bad key sk-secret-credential-123 here' } }, p)!;
    expect([e.getStatus(), e.body.error.code]).toEqual([502, 'upstream_error']);
    expect(e.body.error.message).not.toContain('sk-secret');
    expect(ResponsesFromChatTranslator.chunkError({ choices: [] }, p)).toBeUndefined();
  });
});

describe('ResponsesFromChatObserver', () => {
  const observer = (m = meter()) => new ResponsesFromChatObserver(m, provider({ responsesNative: false }), new ResponsesFromChatTranslator(request, origin));

  it('turns a chat stream into Responses events (head 200), metering the usage chunk', () => {
    const m = meter();
    const o = observer(m);
    const events = dataOf(drive(o, sseBytes([...parallelChunks, '[DONE]']))) as any[];
    expect(o.headStatus).toBe(200);
    expect(events[0].type).toBe('response.created');
    expect(events.at(-1)).toMatchObject({ type: 'response.completed', response: { id: 'resp_abc' } });
    expect(events.filter((e) => e.item?.type === 'function_call' && e.type === 'response.output_item.done')).toHaveLength(2);
    expect(m.usage).toMatchObject({ inputTokens: 1200, outputTokens: 48 });
    expect(o.deltas).toBeGreaterThan(0);
  });

  it('translates custom tool chunks too, and skips comments', () => {
    const o = observer();
    const out = o.events([': OPENROUTER PROCESSING']);
    expect(out).toBe('');
    const events = dataOf(drive(o, sseBytes([...customChunks, '[DONE]']))) as any[];
    expect(events.at(-1).type).toBe('response.completed');
  });

  it('never reports a stream that stopped mid-answer as completed; its failure is response.failed', () => {
    const o = observer();
    expect(() => drive(o, sseBytes(parallelChunks.slice(0, 3)))).toThrow('before it finished');
    const [failed] = dataOf(o.failure(Errors.upstream(502, 'local', 'stream failed: x', 'stream_error', 'server_error'))) as any[];
    expect(failed).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'stream_error' } } });
  });

  it('an upstream error chunk throws the 502', () => {
    let err: unknown;
    try {
      drive(observer(), sseBytes([{ error: { message: 'overloaded' } }]));
    } catch (e) {
      err = e;
    }
    expect((err as OpenAIError).body.error).toMatchObject({ message: 'local: overloaded', code: 'upstream_error' });
  });
});
