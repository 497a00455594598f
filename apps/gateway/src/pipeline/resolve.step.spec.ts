import { OpenAIError } from '@gw/common';
import type { RouteTable } from '@gw/routing';
import { CallContext } from './call-context';
import { context, principal, route } from './pipeline.spec-helpers';
import { MAX_OUTPUT_TOKENS, ResolveStep, choicesOf, maxOutputOf } from './resolve.step';

const routes = {
  resolve: (_tenant: string, model: string) => (model === 'unrouted' ? undefined : model === 'empty' ? { ...route(), groups: [] } : route()),
} as unknown as RouteTable;
const step = new ResolveStep(routes);

/** [status, code or param] of what `fn` throws. */
function refusal(fn: () => unknown): [number, string | null] {
  try {
    fn();
  } catch (e) {
    const err = e as OpenAIError;
    return [err.getStatus(), err.body.error.code ?? err.body.error.param];
  }
  throw new Error('no refusal');
}

describe('ResolveStep', () => {
  it('checks the common fields with OpenAI-shaped 400s', () => {
    const ctx = context();
    expect(refusal(() => step.run(ctx, [1]))).toEqual([400, null]);
    expect(refusal(() => step.run(ctx, {}))).toEqual([400, 'missing_required_parameter']);
    expect(refusal(() => step.run(ctx, { model: 'a b' }))).toEqual([400, 'model']);
    expect(refusal(() => step.run(ctx, { model: 'm', stream: 'yes' }))).toEqual([400, 'stream']);
    expect(refusal(() => step.run(ctx, { model: 'm', service_tier: 1 }))).toEqual([400, 'service_tier']);
  });

  it('applies the key’s model allow-list, then the route: 403, 404, 503', () => {
    const restricted = new CallContext('req_1', principal({ allowedModels: ['gpt-*'] }), 'chat', 'o1');
    expect(refusal(() => step.run(restricted, { model: 'o1' }))).toEqual([403, 'model_not_allowed']);
    expect(refusal(() => step.run(context(), { model: 'unrouted' }))[0]).toBe(404);
    expect(refusal(() => step.run(context(), { model: 'empty' }))[0]).toBe(503);
  });

  it('a routed request gets its route and its requested tier (flex only once the upstream confirms it)', () => {
    const ctx = new CallContext('req_1', principal(), 'chat', 'gpt-x');
    const body = { model: 'gpt-x', service_tier: 'priority' };
    expect(step.run(ctx, body)).toBe(body);
    expect([ctx.route?.id, ctx.serviceTier]).toEqual(['r1', 'priority']);
    step.run(ctx, { model: 'gpt-x', service_tier: 'flex' });
    expect(ctx.serviceTier).toBe('priority');
  });
});

describe('maxOutputOf / choicesOf', () => {
  it('the largest of the output fields, each checked; null is unset', () => {
    expect(maxOutputOf({ max_tokens: 10, max_completion_tokens: 500 }, ['max_completion_tokens', 'max_tokens'])).toBe(500);
    expect(maxOutputOf({ max_tokens: null }, ['max_tokens'])).toBeUndefined();
    for (const v of [0, 1.5, '10', MAX_OUTPUT_TOKENS + 1])
      expect(refusal(() => maxOutputOf({ max_tokens: v }, ['max_tokens']))).toEqual([400, 'invalid_value']);
  });

  it('n: 1 by default, an integer in [1, 128]', () => {
    expect([choicesOf({}), choicesOf({ n: null }), choicesOf({ n: 3 })]).toEqual([1, 1, 3]);
    for (const n of [0, 129, 2.5, '2']) expect(refusal(() => choicesOf({ n }))).toEqual([400, 'invalid_value']);
  });
});
