import { Injectable } from '@nestjs/common';
import { LedgerWriter } from '@gw/metering';
import type { ResolvedTarget } from '@gw/routing';
import { UpstreamDispatcher, UpstreamResponse } from '../proxy/upstream.dispatcher';
import type { Body, CallPlan } from './call-plan';
import type { CallContext } from './call-context';
import { forwardedBytes } from './forwarded-bytes';
import { sentRecordOf } from './ledger-row';

/**
 * Step 4: sends the request to the route's targets (retries, fallback, circuits, backoffs: the dispatcher)
 * until one answers with a 2xx head. Each target gets the plan's body with its model name and its
 * provider's adjustments; the first attempt journals the request with its reservation.
 */
@Injectable()
export class DispatchStep {
  constructor(
    private readonly dispatcher: UpstreamDispatcher,
    private readonly ledger: LedgerWriter,
  ) {}

  async run(ctx: CallContext, plan: CallPlan): Promise<UpstreamResponse> {
    ctx.onDispatch = () => {
      ctx.onDispatch = undefined;
      this.ledger.sent(sentRecordOf(ctx, plan.stream));
    };
    try {
      return await this.dispatcher.send(
        ctx,
        (t) => plan.operation(t),
        plan.stream,
        (t) => upstreamPayload(ctx, plan, t),
        plan.accept,
      );
    } finally {
      // Sent (or given up): the client's bytes are not needed for the rest of a possibly long stream.
      ctx.clientBytes = undefined;
    }
  }
}

/** What target `t` is sent: the client's own bytes when only the model changed, else the body to serialise. */
export function upstreamPayload(ctx: CallContext, plan: CallPlan, t: ResolvedTarget): Body | Buffer {
  const out = upstreamBody(ctx, plan, t);
  return forwardedBytes(ctx.clientBytes, ctx.clientBody, out) ?? out;
}

/** What target `t` is sent: the plan's body, copied, with the model rewritten and the provider's own adjustments. */
export function upstreamBody(ctx: CallContext, plan: CallPlan, t: ResolvedTarget): Body {
  const op = plan.operation(t);
  const out: Body = { ...plan.body(t, op), model: ctx.modelFor(t) };
  t.provider.adapter.prepare(op, out, t.provider, { providerPreferences: ctx.route?.settings.providerPreferences });
  plan.shape(out, t, ctx);
  return out;
}
