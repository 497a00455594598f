import { Injectable } from '@nestjs/common';
import { OpenAIError } from '@gw/common';
import { GatewayMetrics } from '@gw/observability';
import { Operation, UpstreamClient } from '@gw/providers';
import { ResolvedTarget, orderTargets } from '@gw/routing';
import type { Dispatcher } from 'undici';
import { CallContext, ClientGone } from './call-context';
import { upstreamHttpError, upstreamNetworkError } from './upstream-error';

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

/**
 * Sends one request to a route's targets: retries a target on connection errors, timeouts, 429 and 5xx
 * with exponential backoff and jitter (honouring Retry-After), then falls back to the next target.
 * Never retries other 4xx. Returns once an upstream answered 2xx with its head: what follows the first
 * byte is the caller's, and is never retried.
 */
@Injectable()
export class UpstreamDispatcher {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** `op` may depend on the target: /v1/responses goes natively to some providers and as chat to others. */
  async send(
    ctx: CallContext,
    opOf: Operation | ((t: ResolvedTarget) => Operation),
    stream: boolean,
    bodyFor: (t: ResolvedTarget) => Record<string, unknown>,
  ): Promise<UpstreamResponse> {
    const route = ctx.route!;
    const targets = orderTargets(route);
    const maxAttempts = Math.max(1, route.settings.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    const backoff = route.settings.backoffMs ?? DEFAULT_BACKOFF_MS;
    let last: OpenAIError | undefined;
    for (let ti = 0; ti < targets.length; ti++) {
      const target = targets[ti];
      const p = target.provider;
      const model = target.model ?? ctx.model ?? '';
      ctx.target = target;
      ctx.upstreamModel = model;
      const op = typeof opOf === 'function' ? opOf(target) : opOf;
      const body = bodyFor(target);
      const payload = JSON.stringify(body);
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        ctx.attempts++;
        let wait: number | undefined;
        try {
          const res = await this.upstream.request(p.baseUrl + PATHS[op], {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...p.adapter.headers(p) },
            body: payload,
            signal: ctx.abort.signal,
            ...(route.settings.firstByteTimeoutMs ? { headersTimeout: route.settings.firstByteTimeoutMs } : {}),
            ...(route.settings.idleTimeoutMs ? { bodyTimeout: route.settings.idleTimeoutMs } : {}),
          });
          if (res.statusCode < 400) {
            this.metrics.upstreamAttempt(p.name, 'ok');
            return { res, target };
          }
          const text = await res.body.text().catch(() => '');
          last = upstreamHttpError(p, res.statusCode, text, model, res.headers['retry-after'] as string | undefined);
          this.metrics.upstreamAttempt(p.name, `http_${res.statusCode}`);
          if (!retryable(res.statusCode)) throw last;
          wait = retryAfterMs(res.headers['retry-after']);
          // A long Retry-After is better spent on the next target than waiting.
          if (wait !== undefined && wait > MAX_RETRY_AFTER_MS) break;
        } catch (e) {
          if (ctx.abort.signal.aborted) throw ctx.abort.signal.reason instanceof Error ? ctx.abort.signal.reason : new ClientGone();
          if (e === last) throw e;
          if (e instanceof OpenAIError) throw e;
          last = upstreamNetworkError(p, e as Error & { code?: string });
          this.metrics.upstreamAttempt(p.name, (e as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'network');
        }
        if (attempt < maxAttempts) {
          const exp = backoff * 2 ** (attempt - 1);
          const jittered = exp / 2 + Math.random() * (exp / 2);
          await sleep(Math.min(wait ?? jittered, MAX_RETRY_AFTER_MS), ctx.abort.signal);
        }
      }
      if (ti < targets.length - 1) this.metrics.upstreamAttempt(p.name, 'fallback');
    }
    throw last ?? new OpenAIError(503, `No enabled provider serves route "${route.pattern}".`, 'server_error', 'no_provider');
  }
}
