import parallelChunks from './__fixtures__/parallel-tools.chunks.json';
import parallelEvents from './__fixtures__/parallel-tools.events.json';
import customChunks from './__fixtures__/custom-tool.chunks.json';
import { ChatToResponsesStream } from './chat-to-responses.stream';
import type { ChatToResponsesContext } from './chat-to-responses.mapper';
import { sseFrame } from './sse.util';
import type { ChatCompletionChunk, ResponsesRequest } from './translate.types';

interface Ev {
  type: string;
  sequence_number: number;
  [k: string]: any;
}

/** Parses frames the way an SSE client does; also checks the `event:` line matches `data.type`. */
function parse(frames: string[]): Ev[] {
  return frames.map((f) => {
    const m = /^event: (.+)\ndata: (.+)\n\n$/.exec(f);
    if (!m) throw new Error(`malformed frame: ${JSON.stringify(f)}`);
    const data = JSON.parse(m[2]) as Ev;
    expect(data.type).toBe(m[1]);
    return data;
  });
}

function run(chunks: ChatCompletionChunk[], ctx: ChatToResponsesContext): { events: Ev[]; stream: ChatToResponsesStream } {
  const stream = new ChatToResponsesStream(ctx);
  const frames = [...stream.start()];
  for (const c of chunks) frames.push(...stream.push(c));
  frames.push(...stream.finish());
  return { events: parse(frames), stream };
}

function chunk(delta: Record<string, unknown>, finish_reason: string | null = null): ChatCompletionChunk {
  return { id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason }] };
}

const baseCtx = (over: Partial<ChatToResponsesContext> = {}): ChatToResponsesContext => ({
  responseId: 'resp_t',
  model: 'm',
  createdAt: 1,
  customTools: new Set(),
  ...over,
});

describe('sseFrame', () => {
  it('formats one event/data frame', () => {
    expect(sseFrame('response.created', { type: 'response.created', a: 'x\ny' })).toBe(
      'event: response.created\ndata: {"type":"response.created","a":"x\\ny"}\n\n',
    );
  });
});

describe('ChatToResponsesStream', () => {
  describe('golden: text then two parallel tool calls with interleaved argument chunks', () => {
    const request: ResponsesRequest = { model: 'qwen3-coder', input: [], tool_choice: 'auto', parallel_tool_calls: true, store: false };
    const { events, stream } = run(parallelChunks as ChatCompletionChunk[], {
      responseId: 'resp_test1',
      model: 'qwen3-coder',
      createdAt: 1700000000,
      customTools: new Set(),
      request,
    });

    it('emits exactly the expected event sequence', () => {
      expect(events).toEqual(parallelEvents);
    });

    it('numbers events 0..n without gaps', () => {
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    });

    it('reassembles each call’s arguments exactly as the provider streamed them', () => {
      const sent = new Map<number, string>();
      for (const c of parallelChunks as ChatCompletionChunk[]) {
        for (const tc of c.choices?.[0]?.delta?.tool_calls ?? []) {
          sent.set(tc.index!, (sent.get(tc.index!) ?? '') + (tc.function?.arguments ?? ''));
        }
      }
      const deltas = new Map<string, string>();
      for (const e of events.filter((e) => e.type === 'response.function_call_arguments.delta')) {
        deltas.set(e.item_id, (deltas.get(e.item_id) ?? '') + e.delta);
      }
      const done = events.filter((e) => e.type === 'response.output_item.done' && e.item.type === 'function_call');
      expect(done.map((e) => e.item.arguments)).toEqual([sent.get(0), sent.get(1)]);
      expect(done.map((e) => deltas.get(e.item.id))).toEqual([sent.get(0), sent.get(1)]);
      expect(JSON.parse(done[1].item.arguments)).toEqual({ cmd: 'cat b.txt', workdir: '/wé' });
    });

    it('exposes usage (incl. OpenRouter cost) and the finished output items', () => {
      expect(stream.usage).toEqual({ inputTokens: 1200, outputTokens: 48, cachedTokens: 1024, reasoningTokens: 0, costUsd: 0.000321 });
      expect(stream.output.map((i) => i.type)).toEqual(['message', 'function_call', 'function_call']);
    });

    it('ignores anything pushed after finish', () => {
      expect(stream.push(chunk({ content: 'late' }))).toEqual([]);
      expect(stream.finish()).toEqual([]);
      expect(stream.fail({ code: 'server_error', message: 'x' })).toEqual([]);
    });
  });

  describe('custom tool round trip (apply_patch)', () => {
    const patch = '*** Begin Patch\n*** Add File: notes/über.md\n+say "hi"\n+\ttab\\path\n*** End Patch\n';
    const { events, stream } = run(customChunks as ChatCompletionChunk[], baseCtx({ responseId: 'resp_p', customTools: new Set(['apply_patch']) }));

    it('announces a custom_tool_call item with the chat call id as call_id', () => {
      const added = events.find((e) => e.type === 'response.output_item.added');
      expect(added?.item).toEqual({ type: 'custom_tool_call', id: 'ctc_p_0', status: 'in_progress', call_id: 'call_patch', name: 'apply_patch', input: '' });
    });

    it('recovers the raw patch text from the {"input": ...} JSON, byte for byte', () => {
      const done = events.find((e) => e.type === 'response.output_item.done');
      expect(done?.item).toEqual({ type: 'custom_tool_call', id: 'ctc_p_0', status: 'completed', call_id: 'call_patch', name: 'apply_patch', input: patch });
      expect(events.find((e) => e.type === 'response.custom_tool_call_input.done')?.input).toBe(patch);
      const deltas = events.filter((e) => e.type === 'response.custom_tool_call_input.delta').map((e) => e.delta);
      expect(deltas.join('')).toBe(patch);
    });

    it('never leaks the JSON wrapper as function_call events', () => {
      expect(events.some((e) => e.type.startsWith('response.function_call_arguments'))).toBe(false);
      expect(events[events.length - 1].response.output).toEqual([expect.objectContaining({ type: 'custom_tool_call', input: patch })]);
      expect(stream.usage).toEqual({ inputTokens: 900, outputTokens: 60, cachedTokens: 0, reasoningTokens: 0 });
    });

    it('falls back to the raw arguments when the model skipped the JSON wrapper', () => {
      const raw = '*** Begin Patch\n*** Delete File: x\n*** End Patch';
      const r = run(
        [chunk({ tool_calls: [{ index: 0, id: 'c9', function: { name: 'apply_patch', arguments: raw } }] }, 'tool_calls')],
        baseCtx({ customTools: new Set(['apply_patch']) }),
      );
      expect(r.stream.output[0]).toMatchObject({ type: 'custom_tool_call', input: raw });
    });
  });

  describe('namespaced tools', () => {
    it('splits the flat chat name back into namespace + name', () => {
      const { stream } = run(
        [chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'multi_agent_v1__spawn_agent', arguments: '{"message":"go"}' } }] }, 'tool_calls')],
        baseCtx({ namespacedTools: new Map([['multi_agent_v1__spawn_agent', { namespace: 'multi_agent_v1', name: 'spawn_agent' }]]) }),
      );
      expect(stream.output[0]).toEqual({
        type: 'function_call',
        id: 'fc_t_0',
        status: 'completed',
        call_id: 'c1',
        name: 'spawn_agent',
        namespace: 'multi_agent_v1',
        arguments: '{"message":"go"}',
      });
    });
  });

  describe('fail()', () => {
    it('emits response.failed with the error and closes no open item', () => {
      const stream = new ChatToResponsesStream(baseCtx());
      const frames = [...stream.push(chunk({ content: 'partial' })), ...stream.push({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 2 } })];
      frames.push(...stream.fail({ code: 'rate_limit_exceeded', message: 'Rate limit reached. Please try again in 2s.' }));
      const events = parse(frames);
      // push() before start() starts the response implicitly.
      expect(events.slice(0, 2).map((e) => e.type)).toEqual(['response.created', 'response.in_progress']);
      expect(events.some((e) => e.type === 'response.output_item.done')).toBe(false);
      const last = events[events.length - 1];
      expect(last.type).toBe('response.failed');
      expect(last.response).toMatchObject({
        id: 'resp_t',
        status: 'failed',
        output: [],
        error: { code: 'rate_limit_exceeded', message: 'Rate limit reached. Please try again in 2s.' },
        usage: { input_tokens: 10, output_tokens: 2, total_tokens: 12 },
      });
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
      expect(stream.finish()).toEqual([]);
    });
  });

  describe('truncation', () => {
    it('ends with response.incomplete and marks the cut-off item incomplete on finish_reason length', () => {
      const { events } = run([chunk({ content: 'Hello' }), chunk({}, 'length')], baseCtx());
      const last = events[events.length - 1];
      expect(last.type).toBe('response.incomplete');
      expect(last.response.status).toBe('incomplete');
      expect(last.response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
      expect(last.response.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
      expect(events.some((e) => e.type === 'response.completed')).toBe(false);
    });
  });

  describe('reasoning deltas', () => {
    const chunks = [chunk({ reasoning: 'think ' }), chunk({ reasoning_content: 'more' }), chunk({ content: 'Answer' }), chunk({}, 'stop')];

    it('drops them by default', () => {
      const { events, stream } = run(chunks, baseCtx());
      expect(events.some((e) => e.type.includes('reasoning'))).toBe(false);
      expect(stream.output).toEqual([
        { id: 'msg_t_0', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Answer', annotations: [] }] },
      ]);
    });

    it('emits a reasoning item before the message when emitReasoning', () => {
      const { events, stream } = run(chunks, baseCtx({ emitReasoning: true }));
      expect(events.filter((e) => e.type === 'response.reasoning_text.delta').map((e) => e.delta)).toEqual(['think ', 'more']);
      expect(stream.output.map((i) => [i.type, i.id])).toEqual([
        ['reasoning', 'rs_t_0'],
        ['message', 'msg_t_1'],
      ]);
      expect(stream.output[0]).toEqual({ id: 'rs_t_0', type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'think more' }] });
    });
  });

  describe('provider quirks', () => {
    it('buffers arguments that arrive before the tool name', () => {
      const { events, stream } = run(
        [
          chunk({ tool_calls: [{ index: 0, id: 'c1', function: { arguments: '{"a":' } }] }),
          chunk({ tool_calls: [{ index: 0, function: { name: 'f', arguments: '1}' } }] }),
          chunk({}, 'tool_calls'),
        ],
        baseCtx(),
      );
      // Nothing can be emitted for an item before its output_item.added, so the early part is flushed then.
      const types = events.map((e) => e.type);
      expect(types.indexOf('response.output_item.added')).toBeLessThan(types.indexOf('response.function_call_arguments.delta'));
      const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta);
      expect(deltas).toEqual(['{"a":1}']);
      expect(stream.output[0]).toMatchObject({ name: 'f', call_id: 'c1', arguments: '{"a":1}' });
    });

    it('treats a new id on a reused index as a new parallel call', () => {
      const { stream } = run(
        [
          chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'f', arguments: '{"n":1}' } }] }),
          chunk({ tool_calls: [{ index: 0, id: 'c2', function: { name: 'g', arguments: '{"n":2}' } }] }),
          chunk({}, 'tool_calls'),
        ],
        baseCtx(),
      );
      expect(stream.output.map((i) => (i.type === 'function_call' ? [i.call_id, i.name, i.arguments] : []))).toEqual([
        ['c1', 'f', '{"n":1}'],
        ['c2', 'g', '{"n":2}'],
      ]);
    });

    it('generates call ids when the provider sends none and fills empty arguments with {}', () => {
      const { stream } = run(
        [chunk({ tool_calls: [{ index: 0, function: { name: 'get_goal', arguments: '' } }] }), chunk({}, 'tool_calls')],
        baseCtx({ responseId: 'resp_abc' }),
      );
      expect(stream.output[0]).toMatchObject({ type: 'function_call', call_id: 'call_abc_0', arguments: '{}' });
    });

    it('ignores choices other than index 0', () => {
      const { stream } = run(
        [
          {
            choices: [
              { index: 1, delta: { content: 'other' } },
              { index: 0, delta: { content: 'mine' } },
            ],
          },
          chunk({}, 'stop'),
        ],
        baseCtx(),
      );
      expect(stream.output).toEqual([expect.objectContaining({ content: [{ type: 'output_text', text: 'mine', annotations: [] }] })]);
    });

    it('completes an empty response with no output and null usage', () => {
      const { events } = run([], baseCtx());
      expect(events.map((e) => e.type)).toEqual(['response.created', 'response.in_progress', 'response.completed']);
      expect(events[2].response).toMatchObject({ status: 'completed', output: [], usage: null });
    });
  });

  describe('compatibility with the stream Codex 0.169 accepted', () => {
    // Event types the scripted server sent in test/fixtures/codex/sse.json (copied here so the unit
    // test does not depend on another folder): turn1 = exec_command call, turn2 = final message.
    const capturedTypes = {
      turn1: [
        'response.created',
        'response.output_item.added',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.output_item.done',
        'response.completed',
      ],
      turn2: [
        'response.created',
        'response.output_item.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_item.done',
        'response.completed',
      ],
    };
    const sameTypes = (events: Ev[], reference: string[]): string[] => {
      const known = new Set(reference);
      return events.map((e) => e.type).filter((t) => known.has(t));
    };

    it('produces the captured function-call turn (plus optional extras only)', () => {
      const { events } = run(
        [
          chunk({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'exec_command', arguments: '{"cmd":"echo hi-from-codex"}' } }] }),
          chunk({}, 'tool_calls'),
        ],
        baseCtx(),
      );
      expect(sameTypes(events, capturedTypes.turn1)).toEqual(capturedTypes.turn1);
      const done = events.find((e) => e.type === 'response.output_item.done');
      expect(done?.item).toMatchObject({
        type: 'function_call',
        call_id: 'call_1',
        name: 'exec_command',
        arguments: '{"cmd":"echo hi-from-codex"}',
        status: 'completed',
      });
    });

    it('produces the captured text turn (plus optional extras only)', () => {
      const { events } = run(
        [chunk({ content: 'The command ' }), chunk({ content: 'printed: hi-' }), chunk({ content: 'from-codex' }), chunk({}, 'stop')],
        baseCtx(),
      );
      expect(sameTypes(events, capturedTypes.turn2)).toEqual(capturedTypes.turn2);
      const done = events.find((e) => e.type === 'response.output_item.done');
      expect(done?.item).toMatchObject({
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'The command printed: hi-from-codex', annotations: [] }],
      });
    });
  });
});

describe('ChatToResponsesStream on odd provider chunks', () => {
  it('skips what is not of the expected shape instead of throwing', () => {
    const odd = [
      null,
      'x',
      { choices: { a: 1 } },
      { choices: [null, 5] },
      { choices: [{ delta: 'hi' }] },
      { choices: [{ delta: { content: 5, tool_calls: { a: 1 } } }] },
      { choices: [{ delta: { tool_calls: [null, { index: 0, function: 'f' }, { index: 1, id: 7, function: { name: 3, arguments: { a: 1 } } }] } }] },
      { usage: 'lots', choices: [] },
      chunk({ content: 'ok' }, 'stop'),
    ] as unknown as ChatCompletionChunk[];
    const { events } = run(odd, baseCtx());
    expect(events[events.length - 1].type).toBe('response.completed');
    expect(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta)).toEqual(['ok']);
  });
});
