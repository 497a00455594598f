import type { SentRecord, UsageRow } from '@gw/metering';
import type { CallContext } from './call-context';

/** The columns a request's journal record and its ledger row share: who asked what, where it went. */
function requestColumnsOf(ctx: CallContext, streamed: boolean) {
  return {
    requestId: ctx.requestId,
    clientRequestId: ctx.clientRequestId,
    sessionId: ctx.sessionId,
    tenantId: ctx.principal.tenantId,
    keyId: ctx.principal.keyId,
    routeId: ctx.route?.id ?? null,
    providerId: ctx.target?.provider.id ?? null,
    endpoint: ctx.endpoint,
    requestedModel: ctx.model,
    upstreamModel: ctx.upstreamModel,
    streamed,
    startedAt: ctx.startedAt,
  };
}

/**
 * A request's one ledger row, as its context stands: the only place a row is composed (a served request, a
 * refused one, and through `sentRecordOf` the journal's record of one sent upstream).
 */
export function ledgerRowOf(ctx: CallContext, costUsd: number, latencyMs: number, finishedAt: Date): UsageRow {
  const u = ctx.usage;
  return {
    ...requestColumnsOf(ctx, ctx.streamed),
    status: ctx.status,
    errorCode: ctx.errorCode,
    inputTokens: u.inputTokens,
    outputTokens: u.outputTokens,
    cachedTokens: u.cachedTokens,
    costUsd,
    latencyMs,
    ttfbMs: ctx.ttfbMs,
    attempts: ctx.attempts,
    finishedAt,
  };
}

/**
 * The journal's record of a request sent upstream, with its reservation: billed at that (`gateway_restarted`)
 * if this process dies before the request finishes.
 */
export function sentRecordOf(ctx: CallContext, stream: boolean): SentRecord {
  const est = ctx.admission?.estimate;
  const input = ctx.promptEstimate;
  return { ...requestColumnsOf(ctx, stream), inputTokens: input, outputTokens: Math.max(0, (est?.tokens ?? input) - input), costUsd: est?.costUsd ?? 0 };
}
