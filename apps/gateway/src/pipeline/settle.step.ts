import { Injectable, Logger } from '@nestjs/common';
import { OpenAIError, toOpenAIError } from '@gw/common';
import { LedgerWriter, PriceTable } from '@gw/metering';
import { GatewayMetrics, modelLabel } from '@gw/observability';
import type { DataPlaneResponse } from './http.types';
import { DrainService } from '../health/drain.service';
import { CallContext, ClientGone } from './call-context';
import { ledgerRowOf } from './ledger-row';
import { writeHead } from './response-head';

/**
 * Step 6: exactly one ledger row and one metrics observation per authenticated request. `end` settles then
 * ends the response, so the row is journaled before the last byte goes out: a client that has its whole
 * answer always has a row, even if the process is killed right after. `settle` alone (the pipeline's
 * `finally`) covers a response that never ended (client gone).
 */
@Injectable()
export class SettleStep {
  private readonly logger = new Logger('Proxy');

  constructor(
    private readonly prices: PriceTable,
    private readonly ledger: LedgerWriter,
    private readonly metrics: GatewayMetrics,
    private readonly drain: DrainService,
  ) {
    metrics.watchLedger(ledger);
    metrics.watchPrices(prices);
  }

  /** Ends the response, metering the request first. */
  end(ctx: CallContext, res: DataPlaneResponse, body?: string | Buffer): void {
    this.settle(ctx);
    if (body === undefined) res.end();
    else res.end(body);
  }

  /** Answers an error as JSON if nothing was sent yet; records status and code either way. */
  fail(ctx: CallContext, res: DataPlaneResponse, e: unknown): void {
    if (ctx.clientGone || e instanceof ClientGone) {
      ctx.status = 499;
      ctx.errorCode = 'client_closed_request';
      // Once dispatched the upstream has the prompt (and bills it): metered like an aborted stream, never as free.
      if (ctx.attempts > 0 && !ctx.usageReported) ctx.estimateCutShort(0);
      return;
    }
    const reason: unknown = ctx.abort.signal.aborted ? ctx.abort.signal.reason : undefined;
    const err = reason instanceof OpenAIError ? reason : toOpenAIError(e);
    ctx.status = err.getStatus();
    ctx.errorCode = err.body.error.code ?? err.body.error.type;
    if (ctx.status >= 500 && !(e instanceof OpenAIError) && !(reason instanceof OpenAIError)) {
      this.logger.error(`request ${ctx.requestId}: ${(e as Error)?.stack ?? String(e)}`);
    }
    if (res.headersSent) {
      if (!res.writableEnded) this.end(ctx, res);
      return;
    }
    writeHead(ctx, res, ctx.status, { 'content-type': 'application/json', ...err.headers });
    this.end(ctx, res, JSON.stringify(err.body));
  }

  /** Meters the request once: settles its reservation, journals its ledger row, observes its metrics. */
  settle(ctx: CallContext): void {
    if (ctx.finished) return;
    ctx.finished = true;
    ctx.onDispatch = undefined;
    const u = ctx.usage;
    const t = ctx.target;
    const costUsd = this.prices.cost([ctx.upstreamModel, ctx.model], u, { provider: t?.provider.kind, serviceTier: ctx.serviceTier });
    const tokens = u.inputTokens + u.outputTokens;
    if (ctx.admission) {
      if (tokens > 0 || costUsd > 0) ctx.admission.settle({ tokens, costUsd });
      else ctx.admission.release();
    }
    const latencyMs = Math.round(performance.now() - ctx.t0);
    this.ledger.record(ledgerRowOf(ctx, costUsd, latencyMs, new Date()));
    ctx.clearDeadline();
    this.drain.untrack(ctx);
    this.metrics.finished({
      tenant: ctx.principal.tenantName,
      model: modelLabel(ctx.model, ctx.route?.pattern, ctx.status < 400),
      provider: t?.provider.name ?? 'none',
      endpoint: ctx.endpoint,
      status: ctx.status,
      streamed: ctx.streamed,
      durationMs: latencyMs,
      ttfbMs: ctx.ttfbMs,
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      costUsd,
      errorCode: ctx.errorCode,
    });
    if (ctx.dropped) this.metrics.translationDropped(ctx.dropped);
  }
}
