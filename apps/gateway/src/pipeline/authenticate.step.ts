import { Injectable } from '@nestjs/common';
import { GatewayAuthFailureLimiter, GatewayAuthGate, authBucketOf, authDecisionOf, tooManyAuthFailures } from '@gw/auth';
import { clientRequestIdOf, requestIdOf } from '@gw/common';
import { LedgerWriter } from '@gw/metering';
import type { Principal } from '@gw/tenancy';
import type { DataPlaneRequest } from './http.types';
import { CallContext, Endpoint } from './call-context';
import { ledgerRowOf } from './ledger-row';
import { recordedModelName } from './model-name';

/**
 * Step 1: the caller, from the decision `GatewayAuthGate` made from the request head before the body was read
 * (one parse and one in-memory lookup of the bearer; no passport, no second block check). A refusal is
 * answered here (the exception filter writes it): a refused guess first takes one of its address bucket's
 * places (atomically: memory, or one Redis step), so a burst of concurrent guesses gets at most the limit's
 * worth of answers; a key refused after it was recognised (`ip_not_allowed`) gets its ledger row.
 */
@Injectable()
export class AuthenticateStep {
  constructor(
    private readonly gate: GatewayAuthGate,
    private readonly failures: GatewayAuthFailureLimiter,
    private readonly ledger: LedgerWriter,
  ) {}

  /** The principal, or throws the refusal to answer. `endpoint`: the metered endpoint, when there is one. */
  async principal(req: DataPlaneRequest, endpoint?: Endpoint): Promise<Principal> {
    // Every `/v1/…` request passed the gate; a route outside its paths is decided here the same way.
    const decision = authDecisionOf(req) ?? this.gate.decide(req);
    if (decision.ok) return decision.principal;
    if (decision.guess) {
      const r = await this.failures.reserve(authBucketOf(req));
      if (!r.ok) throw tooManyAuthFailures(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
      await this.failures.fail(r.ticket);
    }
    if (decision.principal && endpoint) this.recordRefusal(req, decision.principal, endpoint, decision.error.getStatus(), decision.error.body.error);
    throw decision.error;
  }

  /**
   * A key the gateway recognised but refused still gets its one ledger row, like a request refused later by
   * a limit: no tokens, no cost. Refused before the body was read, so no requested model and not streamed.
   * Unknown, revoked or expired keys have no row: KeyCache does not say whose they were (docs/limits.md).
   */
  private recordRefusal(req: DataPlaneRequest, principal: Principal, endpoint: Endpoint, status: number, error: { code: string | null; type: string }): void {
    const body = (req.body ?? {}) as { model?: unknown; stream?: unknown };
    const ctx = new CallContext(requestIdOf(req), principal, endpoint, recordedModelName(body.model));
    ctx.clientRequestId = clientRequestIdOf(req);
    ctx.status = status;
    ctx.errorCode = error.code ?? error.type;
    ctx.streamed = body.stream === true;
    this.ledger.record(ledgerRowOf(ctx, 0, 0, ctx.startedAt));
  }
}
