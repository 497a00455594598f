import completion from './__fixtures__/chat-completion.json';
import expectedResponse from './__fixtures__/chat-completion.response.json';
import { chatCompletionToResponse, extractCustomToolInput, type ChatToResponsesContext } from './chat-to-responses.mapper';
import type { ChatCompletion } from './translate.types';

const ctx: ChatToResponsesContext = {
  responseId: 'resp_ns1',
  model: 'claude-sonnet-4',
  createdAt: 1700000200,
  customTools: new Set(['apply_patch']),
  namespacedTools: new Map([['multi_agent_v1__wait_agent', { namespace: 'multi_agent_v1', name: 'wait_agent' }]]),
};
const c = completion as ChatCompletion;

describe('chatCompletionToResponse (non-stream)', () => {
  it('golden: text + function call + custom tool call + namespaced call, usage mapped', () => {
    expect(chatCompletionToResponse(c, ctx)).toEqual(expectedResponse);
  });

  it('puts provider reasoning first when emitReasoning', () => {
    const r = chatCompletionToResponse(c, { ...ctx, emitReasoning: true });
    expect(r.output[0]).toEqual({ type: 'reasoning', id: 'rs_ns1_0', summary: [], content: [{ type: 'reasoning_text', text: 'The user wants a fix.' }] });
    expect(r.output.map((i) => i.id)).toEqual(['rs_ns1_0', 'msg_ns1_1', 'fc_ns1_2', 'ctc_ns1_3', 'fc_ns1_4']);
  });

  it('marks a length-truncated answer incomplete', () => {
    const truncated: ChatCompletion = {
      id: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hal' }, finish_reason: 'length' }],
    };
    const r = chatCompletionToResponse(truncated, { ...ctx, request: { model: 'm', input: [], max_output_tokens: 3 } });
    expect(r).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      max_output_tokens: 3,
      usage: null,
      output: [{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: 'Hal', annotations: [] }] }],
    });
  });

  it('keeps a refusal as a refusal part', () => {
    const refused: ChatCompletion = {
      id: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' }, finish_reason: 'stop' }],
    };
    expect(chatCompletionToResponse(refused, ctx).output).toEqual([
      { type: 'message', id: 'msg_ns1_0', role: 'assistant', status: 'completed', content: [{ type: 'refusal', refusal: 'I cannot help with that.' }] },
    ]);
  });
});

describe('extractCustomToolInput', () => {
  it.each([
    ['{"input":"*** Begin Patch\\n*** End Patch"}', '*** Begin Patch\n*** End Patch'],
    ['{"patch":"only key"}', 'only key'],
    ['"bare json string"', 'bare json string'],
    ['*** Begin Patch\n(not json)', '*** Begin Patch\n(not json)'],
    ['{"input":1,"other":2}', '{"input":1,"other":2}'],
    ['   ', ''],
  ])('%j -> %j', (args, expected) => {
    expect(extractCustomToolInput(args)).toBe(expected);
  });
});

describe('chatCompletionToResponse on odd provider JSON', () => {
  it.each([
    ['choices an object', { choices: { a: 1 } }],
    ['choices with null', { choices: [null] }],
    ['message a string', { choices: [{ index: 0, message: 'hi', finish_reason: 7 }] }],
    [
      'tool_calls odd',
      { choices: [{ message: { role: 'assistant', content: [null, { type: 'text', text: 5 }], tool_calls: [null, { function: 'x' }], refusal: 3 } }] },
    ],
    ['usage odd', { choices: [], usage: 'lots' }],
  ])('%s: never throws', (_label, body) => {
    const r = chatCompletionToResponse(body as unknown as ChatCompletion, ctx);
    expect(r.object).toBe('response');
    expect(Array.isArray(r.output)).toBe(true);
  });
});
