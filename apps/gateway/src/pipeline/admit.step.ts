import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { bodyBytesOf } from '@gw/common';
import { BudgetExhaustedError, LimitsService } from '@gw/limits';
import { PriceTable } from '@gw/metering';
import type { DataPlaneRequest } from './http.types';
import type { CallPlan } from './call-plan';
import type { CallContext } from './call-context';
import { MAX_OUTPUT_TOKENS } from './resolve.step';

/**
 * Step 3: reserves an estimate against limits and budgets before anything is forwarded: the prompt from the
 * body's inflated size (what is forwarded, whatever the Content-Encoding) plus `choices` × the output cap,
 * priced at the dearest target the request may reach. When the budget clamped the reservation (nothing else
 * in flight, see budget.decision.ts), the output cap that fits it is kept on `ctx.outputCap` for the
 * upstream body.
 */
@Injectable()
export class AdmitStep {
  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly limits: LimitsService,
    private readonly prices: PriceTable,
  ) {}

  async run(ctx: CallContext, req: DataPlaneRequest, plan: Pick<CallPlan, 'maxOutput' | 'choices'>): Promise<void> {
    // Counted by the body parser after inflation; the fallback is for a body that did not come through it.
    const bytes = bodyBytesOf(req) ?? Buffer.byteLength(JSON.stringify(req.body ?? ''));
    const promptTokens = Math.ceil(bytes / 4);
    ctx.promptEstimate = promptTokens;
    const { maxOutput, choices } = plan;
    // 0: an endpoint without output (embeddings); unset: the default reservation.
    const out =
      maxOutput === 0 ? 0 : maxOutput !== undefined && maxOutput > 0 ? Math.min(Math.ceil(maxOutput), MAX_OUTPUT_TOKENS) : this.cfg.defaultMaxOutputTokens;
    const firstTarget = ctx.route!.groups[0][0];
    const model = ctx.modelFor(firstTarget);
    this.prices.assertPriced([model, ctx.model], firstTarget.provider.kind, this.prices.policyFor(ctx.principal.keyLimits, ctx.principal.tenantLimits));
    // Priced at the dearest target the request may reach: a fallback (or a target the client steers to, e.g.
    // with `previous_response_id`) must not be reserved at the price of a cheap (or local, free) first one.
    const targets = ctx.route!.groups.flat();
    const costAt = (cap: number) => {
      const usage = { inputTokens: promptTokens, outputTokens: cap * choices, cachedTokens: 0 };
      let max = 0;
      for (const t of targets)
        max = Math.max(max, this.prices.cost([ctx.modelFor(t), ctx.model], usage, { provider: t.provider.kind, serviceTier: ctx.serviceTier, estimate: true }));
      return max;
    };
    const costUsd = costAt(out);
    const minOut = Math.min(out, this.cfg.budgetMinOutputTokens);
    try {
      ctx.admission = await this.limits.admit(ctx.principal, {
        model,
        tokens: promptTokens + Math.min(out * choices, MAX_OUTPUT_TOKENS),
        costUsd,
        minCostUsd: minOut < out ? costAt(minOut) : costUsd,
      });
    } catch (e) {
      // Codex's endpoint: a spent budget in the one shape Codex prints with our words and does not retry.
      throw ctx.endpoint === 'responses' && e instanceof BudgetExhaustedError ? e.forCodex() : e;
    }
    if (ctx.admission.clamped) ctx.outputCap = capFor(ctx.admission.reservedUsd, costAt, minOut, out);
  }
}

/** The largest output cap in [minOut, out] whose worst case fits `usd` (prices are linear in tokens). */
function capFor(usd: number, costAt: (cap: number) => number, minOut: number, out: number): number {
  const base = costAt(0);
  const perToken = (costAt(out) - base) / out;
  let cap = perToken > 0 ? Math.floor((usd - base) / perToken) : out;
  cap = Math.max(minOut, Math.min(out, cap));
  // rounding (money is counted in 1e-8 USD) must never leave the cap a token above what was reserved
  while (cap > minOut && costAt(cap) > usd) cap--;
  return cap;
}
