import { randomBytes } from 'node:crypto';
import { OpenAIError, SecretBox } from '@gw/common';
import { COMPACTION_PROMPT, SUMMARY_PREFIX, expandGatewayCompactions, hasCompactionTrigger, summaryRequest, userMessagesOf } from './compaction.request';
import { CompactionSeal } from './compaction.seal';

const seal = new CompactionSeal(new SecretBox(randomBytes(32)));
const user = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });

describe('expandGatewayCompactions', () => {
  it('replaces a gateway-made item by its summary, in place, without touching the client body', () => {
    const item = { type: 'compaction', id: 'cmp_1', encrypted_content: seal.seal('did X, next Y', 't1', 'p1') };
    const body = { model: 'm', input: [user('hi'), item, user('go on')] };
    const out = expandGatewayCompactions(body, seal, 't1');
    expect(out.input).toEqual([user('hi'), user(`${SUMMARY_PREFIX}\ndid X, next Y`), user('go on')]);
    expect(body.input[1]).toBe(item);
    expect(JSON.stringify(out)).not.toContain('gwc1.');
  });

  it('leaves a body without gateway items as it is (the same object) and a provider-made item to the provider', () => {
    const body = { model: 'm', input: [user('hi'), { type: 'compaction', encrypted_content: 'gAAAA-openai' }] };
    expect(expandGatewayCompactions(body, seal, 't1')).toBe(body);
    const plain = { model: 'm', input: 'hello' };
    expect(expandGatewayCompactions(plain, seal, 't1')).toBe(plain);
  });

  it("refuses another tenant's item as the client's 400, naming the item", () => {
    const body = { model: 'm', input: [user('hi'), { type: 'compaction', encrypted_content: seal.seal('secret', 't1', 'p1') }] };
    let err: unknown;
    try {
      expandGatewayCompactions(body, seal, 't2');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpenAIError);
    expect((err as OpenAIError).getStatus()).toBe(400);
    expect((err as OpenAIError).body.error.param).toBe('input[1]');
  });
});

describe('summaryRequest', () => {
  it('drops the trigger, asks for the summary last, lets no tool be called', () => {
    const body = {
      model: 'm',
      stream: true,
      previous_response_id: 'resp_1',
      tools: [{ type: 'function', name: 'f' }],
      tool_choice: 'auto',
      input: [user('hi'), { type: 'compaction_trigger' }],
    };
    expect(hasCompactionTrigger(body)).toBe(true);
    const out = summaryRequest(body);
    expect(out.input).toEqual([user('hi'), { type: 'message', role: 'user', content: [{ type: 'input_text', text: COMPACTION_PROMPT }] }]);
    expect(out.tool_choice).toBe('none');
    expect(out.previous_response_id).toBeUndefined();
    expect(hasCompactionTrigger(out)).toBe(false);
    expect(body.input).toHaveLength(2);
  });

  it('takes a string input as the user message; no tools: no tool_choice', () => {
    const out = summaryRequest({ model: 'm', input: 'hello', tool_choice: 'auto' });
    expect((out.input as unknown[])[0]).toEqual({ type: 'message', role: 'user', content: 'hello' });
    expect(out.tool_choice).toBeUndefined();
    expect(hasCompactionTrigger({ input: 'x' })).toBe(false);
  });
});

describe('userMessagesOf', () => {
  it("keeps the conversation's user messages only", () => {
    const input = [{ role: 'developer', content: 'd' }, user('a'), { type: 'function_call', call_id: 'c', name: 'f' }, { role: 'user', content: 'b' }];
    expect(userMessagesOf({ input })).toEqual([user('a'), { role: 'user', content: 'b' }]);
    expect(userMessagesOf({ input: 'x' })).toEqual([user('x')]);
  });
});
