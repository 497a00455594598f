import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@gw/config';
import { Errors, OpenAIError } from '@gw/common';
import { GatewayMetrics } from '@gw/observability';
import { EGRESS_DENIED_MESSAGE, Operation, UpstreamClient, isEgressDenied } from '@gw/providers';
import { ResolvedTarget } from '@gw/routing';
import type { Dispatcher } from 'undici';
import { CallContext, ClientGone } from '../pipeline/call-context';
import { upstreamHeadersFor } from '../pipeline/client-headers';
import { CircuitBreaker, CircuitLabels } from './circuit-breaker';
import { retryAfterMs } from './retry-after.parser';
import { BackoffReason, TargetBackoff, backoffKey } from './target.backoff';
import {
  EGRESS_FIX,
  isNetworkError,
  isTimeoutError,
  unknownBodyLogLine,
  upstreamFailureKind,
  upstreamHttpError,
  upstreamNetworkError,
  upstreamRedirectError,
} from './upstream-error';
import { unservedError } from './unserved.error';
import {
  type BackoffConfig,
  circuitLabels,
  holdTarget,
  isDeadline,
  networkReason,
  payloadFor,
  UpstreamBody,
  rateLimitWait,
  sleep,
  targetsFor,
  timeoutsFor,
  unsealedPayload,
  DEFAULT_MAX_ATTEMPTS,
  MAX_RETRY_AFTER_MS,
  retryDelayMs,
} from './attempt.util';

export interface UpstreamResponse {
  res: Dispatcher.ResponseData;
  target: ResolvedTarget;
  /** The operation the target was asked for (a Responses request goes as chat to a chat-only provider). */
  op: Operation;
}

/**
 * Sends one request to a route's targets and returns once an upstream answered 2xx with its head: what
 * follows the first byte is the caller's, and is never retried. Per target, by what the upstream did:
 *
 * - 5xx and connection errors: retried on the same target with exponential backoff and jitter (honouring
 *   Retry-After), then the next target; circuit-breaker failures.
 * - Timeouts (connect, first byte, our total deadline): a circuit failure, never retried on the same target.
 * - 429: the target is backed off for the wait the upstream asked for (shared by replicas with Redis) and the
 *   next target is tried at once; not a circuit failure (the upstream is up, only busy).
 * - `insufficient_quota` (402 on OpenRouter), 401, 403: the gateway's account or credential, which only the
 *   operator can fix: never retried, the next target is tried (a quota target is backed off too).
 * - Any other 4xx: the request's own fault, passed on at once.
 *
 * A target whose circuit is open, or that is backed off, is skipped without a call. When no target is left,
 * the client gets the most useful answer: 429 with Retry-After if some target is only rate-limited, else the
 * last upstream error, else 503 naming why every target was skipped.
 */
@Injectable()
export class UpstreamDispatcher {
  private readonly logger = new Logger('Upstream');

  constructor(
    private readonly upstream: UpstreamClient,
    private readonly metrics: GatewayMetrics,
    private readonly breaker: CircuitBreaker,
    private readonly backoff: TargetBackoff,
    @Inject(APP_CONFIG) private readonly cfg: BackoffConfig,
  ) {}

  /**
   * `op` may depend on the target: /v1/responses goes natively to some providers and as chat to others.
   * `accept`, when given, leaves out the targets that cannot serve this request (e.g. chat-only providers
   * for a Responses request that continues a stored response).
   */
  async send(
    ctx: CallContext,
    opOf: Operation | ((t: ResolvedTarget) => Operation),
    stream: boolean,
    bodyFor: (t: ResolvedTarget) => UpstreamBody,
    accept?: (t: ResolvedTarget) => boolean,
  ): Promise<UpstreamResponse> {
    const route = ctx.route!;
    const targets = targetsFor(ctx, route, accept);
    const s = route.settings;
    const maxAttempts = Math.max(1, s.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    const timeouts = timeoutsFor(s, stream);
    let last: OpenAIError | undefined;
    const skips = { rateLimited: [] as CircuitLabels[], quotaSkipped: [] as CircuitLabels[], circuitOpen: [] as CircuitLabels[] };
    for (let ti = 0; ti < targets.length; ti++) {
      const target = targets[ti];
      const p = target.provider;
      const model = ctx.modelFor(target);
      const circuit = circuitLabels(route, target);
      // Backoffs are per upstream model (a glob route's 429 on one model must not stop its others); the
      // circuit keeps the route pattern, a bounded label.
      const limitedTarget: CircuitLabels = model ? { ...circuit, model } : circuit;
      const held = this.backoff.check(backoffKey(limitedTarget));
      if (held) {
        (held.reason === 'rate_limit' ? skips.rateLimited : skips.quotaSkipped).push(limitedTarget);
        this.metrics.upstreamError(p.name, 'backoff');
        continue;
      }
      const pass = this.breaker.tryPass(circuit);
      if (!pass) {
        skips.circuitOpen.push(circuit);
        this.metrics.upstreamError(p.name, 'circuit_open');
        continue;
      }
      ctx.target = target;
      ctx.upstreamModel = model;
      // Whatever ends this block without a verdict on the upstream (our own errors, a bad request body,
      // the client leaving, a shutdown) gives the pass back: a half-open circuit's probe slot included.
      let settled = false;
      try {
        const op = typeof opOf === 'function' ? opOf(target) : opOf;
        let payload = payloadFor(p.name, bodyFor, target);
        attempts: for (let attempt = 1; attempt <= maxAttempts; attempt++) {
          ctx.attempts++;
          let wait: number | undefined;
          let waiting = false;
          try {
            ctx.onDispatch?.();
            waiting = true;
            const res = await this.upstream.request(p.baseUrl + p.adapter.path(op), {
              method: 'POST',
              // The adapter's headers (the gateway's credential) last: nothing of the client's can replace them.
              headers: upstreamHeadersFor(ctx, p, op, stream),
              body: payload,
              signal: ctx.abort.signal,
              ...timeouts,
            });
            waiting = false;
            ctx.noteUpstreamHeaders(res.headers);
            if (res.statusCode >= 300 && res.statusCode < 400) {
              await res.body.dump().catch(() => undefined);
              last = upstreamRedirectError(p, res.statusCode, res.headers.location, this.logger);
              this.metrics.upstreamError(p.name, `http_${res.statusCode}`);
              this.breaker.success(pass);
              settled = true;
              break attempts;
            }
            if (res.statusCode < 400) {
              this.metrics.upstreamOk(p.name);
              this.breaker.success(pass);
              settled = true;
              return { res, target, op };
            }
            const text = await res.body.text().catch(() => '');
            last = upstreamHttpError(p, res.statusCode, text, model, res.headers['retry-after'] as string | undefined);
            // The tenant reads only "upstream answered HTTP <status>": what was said is for the operator.
            const odd = unknownBodyLogLine(p, res.statusCode, text);
            if (odd) this.logger.warn(odd);
            this.metrics.upstreamError(p.name, `http_${res.statusCode}`);
            const kind = upstreamFailureKind(res.statusCode, text);
            switch (kind) {
              case 'client': {
                // The upstream answered sensibly about a bad request: it is healthy.
                this.breaker.success(pass);
                settled = true;
                const unsealed = unsealedPayload(ctx, res.statusCode, text, () => payloadFor(p.name, bodyFor, target));
                if (unsealed === undefined) throw last;
                payload = unsealed;
                attempt--;
                continue attempts;
              }
              case 'auth':
                // Up, but refusing the gateway's credential: only the operator can fix it; another target may serve.
                this.breaker.success(pass);
                settled = true;
                break attempts;
              case 'rate_limit':
              case 'quota': {
                // Up but refusing work: neither a success nor a failure of its health.
                this.breaker.release(pass);
                settled = true;
                const reason: BackoffReason = kind;
                const ms = kind === 'rate_limit' ? rateLimitWait(this.cfg, res.headers) : this.cfg.upstreamQuotaBackoffMs;
                holdTarget(this.backoff, this.metrics, this.logger, limitedTarget, ms, reason);
                if (kind === 'rate_limit') skips.rateLimited.push(limitedTarget);
                break attempts;
              }
              case 'server':
                this.breaker.failure(pass, circuit, last.body.error.message);
                settled = true;
                wait = retryAfterMs(res.headers['retry-after']);
                // A long Retry-After is better spent on the next target than waiting.
                if (wait !== undefined && wait > MAX_RETRY_AFTER_MS) break attempts;
            }
          } catch (e) {
            if (ctx.abort.signal.aborted) {
              const reason: unknown = ctx.abort.signal.reason;
              // Our total deadline while the upstream kept us waiting: a timeout of the upstream's.
              if (isDeadline(reason) && waiting) {
                this.metrics.upstreamError(p.name, 'timeout');
                this.breaker.failure(pass, circuit, `${p.name}: ${reason.body.error.message}`);
                settled = true;
              }
              throw reason instanceof Error ? reason : new ClientGone();
            }
            if (e === last) throw e;
            if (e instanceof OpenAIError) throw e;
            if (isEgressDenied(e)) {
              // The provider's address is refused by configuration: no socket was opened. Retrying cannot help and
              // the upstream's health is unknown (not a circuit failure); another target may serve. The rule and
              // address are the operator's to read, never the tenant's.
              this.logger.error(`${p.name}: ${(e as Error).message}; ${EGRESS_FIX}`);
              last = Errors.upstream(502, p.name, EGRESS_DENIED_MESSAGE, 'upstream_egress_denied', 'server_error');
              this.metrics.upstreamError(p.name, 'egress_denied');
              this.breaker.release(pass);
              settled = true;
              break attempts;
            }
            // A bug of ours is no news about the upstream: not retried, not a circuit failure; a logged 500.
            if (!isNetworkError(e)) throw e;
            last = upstreamNetworkError(p, e);
            this.metrics.upstreamError(p.name, networkReason(e));
            this.breaker.failure(pass, circuit, last.body.error.message);
            settled = true;
            // A hung upstream would only hang again: the next target gets what time is left.
            if (isTimeoutError(e)) break;
          }
          // Retrying a target whose circuit just opened would only add latency: fall back now.
          if (this.breaker.isOpen(circuit)) break;
          if (attempt < maxAttempts) {
            this.metrics.retry(p.name);
            await sleep(retryDelayMs(s.backoffMs, attempt, wait), ctx.abort.signal);
          }
        }
      } finally {
        if (!settled) this.breaker.release(pass);
      }
      if (ti < targets.length - 1) this.metrics.fallback(p.name);
    }
    // Nothing served. Whatever is thrown, the ledger and headers name a target (the last tried, else the first).
    if (!ctx.target && targets.length) {
      ctx.target = targets[0];
      ctx.upstreamModel = ctx.modelFor(targets[0]);
    }
    throw unservedError(ctx.model ?? route.pattern, route.pattern, { ...skips, last }, this.breaker, this.backoff);
  }
}
