import { Injectable } from '@nestjs/common';
import { Errors, OpenAIError } from '@gw/common';
import { GatewayMetrics } from '@gw/observability';
import { Operation, UpstreamClient } from '@gw/providers';
import { ResolvedRoute, ResolvedTarget, orderTargets } from '@gw/routing';
import type { Dispatcher } from 'undici';
import { CallContext, ClientGone } from './call-context';
import { CircuitBreaker, CircuitLabels } from './circuit-breaker';
import { isNetworkError, upstreamHttpError, upstreamNetworkError } from './upstream-error';

export interface UpstreamResponse {
  res: Dispatcher.ResponseData;
  target: ResolvedTarget;
}

const PATHS: Record<Operation, string> = { chat: '/chat/completions', responses: '/responses', embeddings: '/embeddings' };
const DEFAULT_MAX_ATTEMPTS = 2;
const DEFAULT_BACKOFF_MS = 250;
const MAX_RETRY_AFTER_MS = 30_000;

function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/** "Retry-After: 2" or an HTTP date, in ms; undefined when absent or unparseable. */
export function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Connection errors and timeouts (no HTTP answer) as a short, bounded reason for metrics. */
function networkReason(e: { code?: string }): string {
  return e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'network';
}

/**
 * Sends one request to a route's targets: retries a target on connection errors, timeouts, 429 and 5xx
 * with exponential backoff and jitter (honouring Retry-After), then falls back to the next target.
 * Never retries other 4xx. Returns once an upstream answered 2xx with its head: what follows the first
 * byte is the caller's, and is never retried.
 *
 * Each target sits behind a circuit breaker: a target whose circuit is open is skipped at once, and a
 * circuit that opens during this request's retries sends it straight to the next target.
 */
@Injectable()
export class UpstreamDispatcher {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly metrics: GatewayMetrics,
    private readonly breaker: CircuitBreaker,
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
    bodyFor: (t: ResolvedTarget) => Record<string, unknown>,
    accept?: (t: ResolvedTarget) => boolean,
  ): Promise<UpstreamResponse> {
    const route = ctx.route!;
    const targets = accept ? orderTargets(route).filter(accept) : orderTargets(route);
    const s = route.settings;
    const maxAttempts = Math.max(1, s.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    const backoff = s.backoffMs ?? DEFAULT_BACKOFF_MS;
    const timeouts = {
      ...(s.connectTimeoutMs ? { connectTimeout: s.connectTimeoutMs } : {}),
      ...(s.firstByteTimeoutMs ? { headersTimeout: s.firstByteTimeoutMs } : {}),
      ...(s.idleTimeoutMs ? { bodyTimeout: s.idleTimeoutMs } : {}),
    };
    let last: OpenAIError | undefined;
    const skipped: CircuitLabels[] = [];
    for (let ti = 0; ti < targets.length; ti++) {
      const target = targets[ti];
      const p = target.provider;
      const model = target.model ?? ctx.model ?? '';
      const circuit = circuitLabels(route, target);
      const pass = this.breaker.tryPass(circuit);
      if (!pass) {
        skipped.push(circuit);
        this.metrics.upstreamError(p.name, 'circuit_open');
        continue;
      }
      ctx.target = target;
      ctx.upstreamModel = model;
      // Whatever ends this block without a verdict on the upstream (our own errors, a bad request body,
      // the client leaving, our deadline) gives the pass back: a half-open circuit's probe slot included.
      let settled = false;
      try {
        const op = typeof opOf === 'function' ? opOf(target) : opOf;
        const payload = this.payload(p.name, bodyFor, target);
        for (let attempt = 1; attempt <= maxAttempts; attempt++) {
          ctx.attempts++;
          let wait: number | undefined;
          try {
            ctx.onDispatch?.();
            const res = await this.upstream.request(p.baseUrl + PATHS[op], {
              method: 'POST',
              headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...p.adapter.headers(p) },
              body: payload,
              signal: ctx.abort.signal,
              ...timeouts,
            });
            if (res.statusCode < 400) {
              this.metrics.upstreamOk(p.name);
              this.breaker.success(pass);
              settled = true;
              return { res, target };
            }
            const text = await res.body.text().catch(() => '');
            last = upstreamHttpError(p, res.statusCode, text, model, res.headers['retry-after'] as string | undefined);
            this.metrics.upstreamError(p.name, `http_${res.statusCode}`);
            if (!retryable(res.statusCode)) {
              // The upstream answered sensibly about a bad request: it is healthy.
              this.breaker.success(pass);
              settled = true;
              throw last;
            }
            this.breaker.failure(pass, circuit, last.body.error.message);
            settled = true;
            wait = retryAfterMs(res.headers['retry-after']);
            // A long Retry-After is better spent on the next target than waiting.
            if (wait !== undefined && wait > MAX_RETRY_AFTER_MS) break;
          } catch (e) {
            if (ctx.abort.signal.aborted) throw ctx.abort.signal.reason instanceof Error ? ctx.abort.signal.reason : new ClientGone();
            if (e === last) throw e;
            if (e instanceof OpenAIError) throw e;
            // A bug of ours is no news about the upstream: not retried, not a circuit failure; a logged 500.
            if (!isNetworkError(e)) throw e;
            last = upstreamNetworkError(p, e);
            this.metrics.upstreamError(p.name, networkReason(e as { code?: string }));
            this.breaker.failure(pass, circuit, last.body.error.message);
            settled = true;
          }
          // Retrying a target whose circuit just opened would only add latency: fall back now.
          if (this.breaker.isOpen(circuit)) break;
          if (attempt < maxAttempts) {
            const exp = backoff * 2 ** (attempt - 1);
            const jittered = exp / 2 + Math.random() * (exp / 2);
            this.metrics.retry(p.name);
            await sleep(Math.min(wait ?? jittered, MAX_RETRY_AFTER_MS), ctx.abort.signal);
          }
        }
      } finally {
        if (!settled) this.breaker.release(pass);
      }
      if (ti < targets.length - 1) this.metrics.fallback(p.name);
    }
    if (last) throw last;
    if (skipped.length) {
      const secs = Math.max(1, Math.ceil(this.breaker.retryInMs(skipped) / 1000));
      // Nothing was sent; the ledger and headers still name the target that would have served it.
      if (!ctx.target) {
        ctx.target = targets[0];
        ctx.upstreamModel = targets[0].model ?? ctx.model;
      }
      throw new OpenAIError(
        503,
        `Every provider for \`${ctx.model ?? route.pattern}\` is failing (${skipped.map((c) => `${c.provider}/${c.model}`).join(', ')}); circuit open, retry in ${secs}s.`,
        'server_error',
        'circuit_open',
        null,
        { 'retry-after': String(secs) },
      );
    }
    throw new OpenAIError(503, `No enabled provider serves route "${route.pattern}".`, 'server_error', 'no_provider');
  }

  /**
   * The serialised upstream body for one target. It is built from the client's request alone, so a
   * failure here is the request's fault (an odd shape the translation cannot take): 400, never retried.
   */
  private payload(provider: string, bodyFor: (t: ResolvedTarget) => Record<string, unknown>, target: ResolvedTarget): string {
    try {
      return JSON.stringify(bodyFor(target));
    } catch (e) {
      if (e instanceof OpenAIError) throw e;
      throw Errors.badRequest(`The request could not be prepared for ${provider}: ${(e as Error)?.message ?? String(e)}`);
    }
  }
}

/**
 * A circuit per configured route target: provider + upstream model. A pass-through target (no model
 * set) is keyed by the route pattern, so client-chosen model names never become circuits or labels.
 */
export function circuitLabels(route: ResolvedRoute, t: ResolvedTarget): CircuitLabels {
  return { providerId: t.provider.id, provider: t.provider.name, model: t.model ?? route.pattern };
}
