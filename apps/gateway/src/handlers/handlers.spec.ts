import { randomBytes } from 'node:crypto';
import { OpenAIError, SecretBox } from '@gw/common';
import {
  CompactionSeal,
  OpenAIChatObserver,
  OpenAIResponsesObserver,
  PASS_THROUGH_JSON,
  ResponsesFromChatObserver,
  ResponsesFromChatTranslator,
} from '@gw/providers';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import { upstreamBody } from '../pipeline/dispatch.step';
import { context, provider, target } from '../pipeline/pipeline.spec-helpers';
import { ChatHandler } from './chat.handler';
import { EmbeddingsHandler } from './embeddings.handler';
import { ResponsesHandler } from './responses.handler';

const native = target('gpt-up', provider({ name: 'openai' }));
const chatOnly = target('qwen', provider({ id: 'p2', name: 'ollama', kind: 'ollama', responsesNative: false }));
const up = (t = native, op: 'chat' | 'responses' = 'chat') => ({ target: t, op, res: { statusCode: 200 } }) as unknown as UpstreamResponse;
const code = (fn: () => unknown): string | null => {
  try {
    fn();
  } catch (e) {
    return (e as OpenAIError).body.error.param;
  }
  return 'none';
};

describe('ChatHandler', () => {
  const h = new ChatHandler();

  it('validates messages and stream_options', () => {
    expect(code(() => h.plan({ model: 'm', messages: [] }))).toBe('messages');
    expect(code(() => h.plan({ model: 'm', messages: [1] }))).toBe('messages[0]');
    expect(code(() => h.plan({ model: 'm', messages: [{}], stream_options: 1 }))).toBe('stream_options');
  });

  it('a stream always asks for usage (the observer drops it again) and gets the budget’s output cap; the client body is not modified', () => {
    const ctx = context('m', [native]);
    const client = { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 900, n: 2 };
    const plan = h.plan(client);
    expect([plan.stream, plan.maxOutput, plan.choices]).toEqual([true, 900, 2]);
    ctx.outputCap = 100;
    expect(upstreamBody(ctx, plan, native)).toMatchObject({ model: 'gpt-up', max_tokens: 100, stream_options: { include_usage: true } });
    expect(client).not.toHaveProperty('stream_options');
    expect(plan.relay(ctx, up())).toBeInstanceOf(OpenAIChatObserver);
    expect(h.plan({ ...client, stream: false }).relay(ctx, up())).toBe(PASS_THROUGH_JSON.chat);
  });
});

describe('EmbeddingsHandler', () => {
  it('needs input, reserves no output, passes the answer through', () => {
    const h = new EmbeddingsHandler();
    expect(code(() => h.plan({ model: 'm', input: [] }))).toBe('input');
    const plan = h.plan({ model: 'm', input: 'x' });
    expect([plan.stream, plan.maxOutput, plan.operation(native), plan.relay(context(), up())]).toEqual([false, 0, 'embeddings', PASS_THROUGH_JSON.embeddings]);
  });
});

describe('ResponsesHandler', () => {
  const h = new ResponsesHandler(new CompactionSeal(new SecretBox(randomBytes(32))));
  const body = { model: 'm', input: 'hi', stream: true, max_output_tokens: 500 };

  it('native targets get the request as it is (model rewritten, output capped); chat-only ones its chat translation', () => {
    const ctx = context('m', [native, chatOnly]);
    ctx.outputCap = 50;
    const plan = h.plan(body, ctx);
    expect(plan.maxOutput).toBe(500);
    expect([plan.operation(native), plan.operation(chatOnly)]).toEqual(['responses', 'chat']);
    expect(upstreamBody(ctx, plan, native)).toMatchObject({ model: 'gpt-up', input: 'hi', max_output_tokens: 50 });
    const chat = upstreamBody(ctx, plan, chatOnly);
    expect(chat).toMatchObject({ model: 'qwen', stream: true, stream_options: { include_usage: true }, max_tokens: 50 });
    expect(chat.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(plan.relay(ctx, up(native, 'responses'))).toBeInstanceOf(OpenAIResponsesObserver);
    expect(plan.relay(ctx, up(chatOnly))).toBeInstanceOf(ResponsesFromChatObserver);
    expect(h.plan({ ...body, stream: false }, ctx).relay(ctx, up(chatOnly))).toBeInstanceOf(ResponsesFromChatTranslator);
  });

  it('previous_response_id goes to native targets only, and is a 400 on a route without one', () => {
    const plan = h.plan({ ...body, previous_response_id: 'resp_1' }, context('m', [native, chatOnly]));
    expect([plan.accept?.(native), plan.accept?.(chatOnly)]).toEqual([true, false]);
    expect(code(() => h.plan({ ...body, previous_response_id: 'resp_1' }, context('m', [chatOnly])))).toBe('previous_response_id');
  });
});
