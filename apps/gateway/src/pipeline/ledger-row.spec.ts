import { ledgerRowOf, sentRecordOf } from './ledger-row';
import { context, target } from './pipeline.spec-helpers';

describe('ledgerRowOf / sentRecordOf', () => {
  it('a row is the context as it stands: who, where, status, usage, cost and timing', () => {
    const ctx = context();
    ctx.target = target();
    ctx.upstreamModel = ctx.modelFor(ctx.target);
    ctx.status = 429;
    ctx.errorCode = 'rate_limit_exceeded';
    ctx.usage = { inputTokens: 10, outputTokens: 3, cachedTokens: 2, reasoningTokens: 0 };
    ctx.attempts = 2;
    ctx.streamed = true;
    const end = new Date();
    expect(ledgerRowOf(ctx, 0.5, 42, end)).toEqual({
      requestId: 'req_abc',
      clientRequestId: null,
      sessionId: null,
      tenantId: 't1',
      keyId: 'k1',
      routeId: 'r1',
      providerId: 'p1',
      endpoint: 'chat',
      requestedModel: 'gpt-x',
      upstreamModel: 'up-model',
      streamed: true,
      startedAt: ctx.startedAt,
      status: 429,
      errorCode: 'rate_limit_exceeded',
      inputTokens: 10,
      outputTokens: 3,
      cachedTokens: 2,
      costUsd: 0.5,
      latencyMs: 42,
      ttfbMs: null,
      attempts: 2,
      finishedAt: end,
    });
  });

  it('the journal record carries the reservation: prompt estimate and the rest of the estimate as output', () => {
    const ctx = context();
    ctx.promptEstimate = 100;
    ctx.admission = { estimate: { tokens: 4196, costUsd: 0.02 } } as never;
    expect(sentRecordOf(ctx, false)).toMatchObject({
      requestId: 'req_abc',
      streamed: false,
      inputTokens: 100,
      outputTokens: 4096,
      costUsd: 0.02,
      upstreamModel: null,
    });
  });

  it("the client's session id is in the row and in the journal's record (a killed process's row keeps it)", () => {
    const ctx = context();
    ctx.sessionId = '01a22f8b-f2a6-7273-8063-51d575ac2090';
    expect(ledgerRowOf(ctx, 0, 1, new Date()).sessionId).toBe(ctx.sessionId);
    expect(sentRecordOf(ctx, true).sessionId).toBe(ctx.sessionId);
  });

  it('the model a target is asked for: its own, else the client’s (a pass-through target)', () => {
    const ctx = context('gpt-x');
    expect([ctx.modelFor(target('pinned')), ctx.modelFor(target(null))]).toEqual(['pinned', 'gpt-x']);
  });
});
