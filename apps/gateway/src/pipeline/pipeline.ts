import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Errors } from '@gw/common';
import { GatewayMetrics, annotateRequestLog } from '@gw/observability';
import { sessionKeyOf } from '@gw/routing';
import type { Principal } from '@gw/tenancy';
import type { DataPlaneRequest } from './http.types';
import { DrainService } from '../health/drain.service';
import { AdmitStep } from './admit.step';
import { AuthenticateStep } from './authenticate.step';
import { CallContext, ClientGone } from './call-context';
import { sessionIdOf } from './client-headers';
import type { EndpointHandler } from './call-plan';
import { ClientCall, ClientSink, httpCall } from './client-sink';
import { DispatchStep } from './dispatch.step';
import { recordedModelName } from './model-name';
import { RelayStep } from './relay.step';
import { ResolveStep } from './resolve.step';
import { SettleStep } from './settle.step';

/**
 * The data plane, one request at a time:
 *   authenticate → resolve → admit → dispatch → relay → settle
 * An endpoint's handler supplies only what differs (its validation and a `CallPlan`); whatever ends the
 * request, it is settled once: one ledger row, one metrics observation. Nothing here waits on Postgres:
 * keys, routes and prices are in memory, the ledger is batched.
 */
@Injectable()
export class DataPlanePipeline {
  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly metrics: GatewayMetrics,
    private readonly drain: DrainService,
    private readonly authenticate: AuthenticateStep,
    private readonly resolve: ResolveStep,
    private readonly admit: AdmitStep,
    private readonly dispatch: DispatchStep,
    private readonly relay: RelayStep,
    private readonly settle: SettleStep,
  ) {}

  /** An HTTP request: its caller from the pre-body gate's decision, then the call. */
  async run(handler: EndpointHandler, req: DataPlaneRequest, res: ClientSink): Promise<void> {
    const principal = await this.authenticate.principal(req, handler.endpoint);
    return this.call(handler, principal, httpCall(req), res);
  }

  /** One call of an authenticated caller (an HTTP request, or a WebSocket's `response.create`), answered on `res`. */
  async call(handler: EndpointHandler, principal: Principal, call: ClientCall, res: ClientSink): Promise<void> {
    const ctx = this.begin(call, res, principal, handler);
    try {
      const plan = handler.plan(this.resolve.run(ctx, call.body), ctx);
      await this.admit.run(ctx, call, plan);
      const up = await this.dispatch.run(ctx, plan);
      await this.relay.run(ctx, res, up, plan.relay(ctx, up));
    } catch (e) {
      this.settle.fail(ctx, res, e);
    } finally {
      this.settle.settle(ctx);
    }
  }

  /** The request's context: ids, its log line, abort on client close, the total deadline, drain tracking. */
  private begin(call: ClientCall, res: ClientSink, principal: Principal, handler: EndpointHandler): CallContext {
    const body = call.body;
    const endpoint = handler.endpoint;
    // Recorded (log line, ledger row) even when resolve refuses it, so bounded here already.
    const ctx = new CallContext(
      call.requestId,
      principal,
      endpoint,
      recordedModelName(body && typeof body === 'object' ? (body as { model?: unknown }).model : undefined),
    );
    ctx.clientRequestId = call.clientRequestId;
    ctx.sessionKey = sessionKeyOf(body, call.headers);
    ctx.sessionId = sessionIdOf(call.headers, body);
    ctx.requestHeaders = call.headers;
    if (call.raw) {
      ctx.clientBody = body;
      ctx.clientBytes = call.raw;
    }
    this.metrics.started(endpoint);
    // The request's one log line (written when the response ends): metadata only, never prompt or completion.
    annotateRequestLog(res, () => ({
      tenant: principal.tenantName,
      keyPrefix: principal.keyPrefix,
      endpoint,
      sessionId: ctx.sessionId,
      model: ctx.model,
      provider: ctx.target?.provider.name ?? null,
      upstreamModel: ctx.upstreamModel,
      status: ctx.status,
      errorCode: ctx.errorCode,
      streamed: ctx.streamed,
      attempts: ctx.attempts,
      ttfbMs: ctx.ttfbMs,
      inputTokens: ctx.usage.inputTokens,
      outputTokens: ctx.usage.outputTokens,
      dropped: ctx.dropped ? ctx.dropped.join(',') : null,
    }));
    // The client leaving aborts the upstream at once: no orphaned upstream streams.
    res.on('close', () => {
      if (!res.writableFinished && !ctx.abort.signal.aborted) ctx.abort.abort(new ClientGone());
      ctx.clearDeadline();
    });
    // A client that hung up before we got here (e.g. during auth) fired its 'close' already: meter it as 499 now.
    if (call.gone() && !ctx.abort.signal.aborted) ctx.abort.abort(new ClientGone());
    // The default budget until the route is known (resolve applies the route's own).
    const total = this.cfg.upstreamTotalTimeoutMs;
    ctx.setDeadline(total, () => Errors.timeout(`total request time of ${total} ms exceeded`));
    this.drain.track(ctx);
    return ctx;
  }
}
