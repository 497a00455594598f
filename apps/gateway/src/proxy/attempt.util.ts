// The stateless parts of an upstream attempt (UpstreamDispatcher): waits, timeouts, labels, the serialised body.
import type { Logger } from '@nestjs/common';
import type { AppConfig } from '@gw/config';
import { Errors, OpenAIError } from '@gw/common';
import type { GatewayMetrics } from '@gw/observability';
import type { RouteSettings } from '@gw/db';
import { ResolvedRoute, ResolvedTarget, orderTargets } from '@gw/routing';
import type { CallContext } from '../pipeline/call-context';
import { CircuitLabels } from './circuit-breaker';
import { upstreamWaitMs } from './retry-after.parser';
import { BackoffReason, TargetBackoff, backoffKey } from './target.backoff';
import { isSealedRefusal, isTimeoutError } from './upstream-error';

/** The backoff settings the dispatcher reads (a subset of AppConfig). */
export type BackoffConfig = Pick<AppConfig, 'upstreamRateLimitBackoffMs' | 'upstreamMaxBackoffMs' | 'upstreamQuotaBackoffMs'>;

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
export function networkReason(e: unknown): string {
  return isTimeoutError(e) ? 'timeout' : 'network';
}

/** Our own total deadline fired (as opposed to the client leaving or a shutdown). */
export function isDeadline(reason: unknown): reason is OpenAIError {
  return reason instanceof OpenAIError && reason.body.error.code === 'upstream_timeout';
}

/**
 * undici's timeouts for one request of a route. A stream's head comes at once from real providers: it waits
 * UPSTREAM_FIRST_BYTE_TIMEOUT_MS (the pool's default). A non-stream head comes with the whole answer, which
 * may take minutes: only the total deadline bounds it (0 turns undici's timer off), unless the route sets its
 * own first-byte timeout.
 */
export function timeoutsFor(s: RouteSettings, stream: boolean): { connectTimeout?: number; headersTimeout?: number; bodyTimeout?: number } {
  const headersTimeout = s.firstByteTimeoutMs ?? (stream ? undefined : 0);
  return {
    ...(s.connectTimeoutMs ? { connectTimeout: s.connectTimeoutMs } : {}),
    ...(headersTimeout !== undefined ? { headersTimeout } : {}),
    ...(s.idleTimeoutMs ? { bodyTimeout: s.idleTimeoutMs } : {}),
  };
}

/** What a target is sent: a body to serialise, or bytes ready to go (the client's, see forwarded-bytes.ts). */
export type UpstreamBody = Record<string, unknown> | Buffer;

/**
 * The serialised upstream body for one target. It is built from the client's request alone, so a
 * failure here is the request's fault (an odd shape the translation cannot take): 400, never retried.
 */
export function payloadFor(provider: string, bodyFor: (t: ResolvedTarget) => UpstreamBody, target: ResolvedTarget): string | Buffer {
  try {
    const b = bodyFor(target);
    return Buffer.isBuffer(b) ? b : JSON.stringify(b);
  } catch (e) {
    if (e instanceof OpenAIError) throw e;
    throw Errors.badRequest(`The request could not be prepared for ${provider}: ${(e as Error)?.message ?? String(e)}`);
  }
}

/**
 * A circuit per configured route target: provider + upstream model. A pass-through target (no model
 * set) is keyed by the route pattern, so client-chosen model names never become circuits or labels.
 */
export function circuitLabels(route: ResolvedRoute, t: ResolvedTarget): CircuitLabels {
  return { providerId: t.provider.id, provider: t.provider.name, model: t.model ?? route.pattern };
}

/**
 * The targets one request tries, in order: the session's (affinity) or a weighted random one, less those
 * `accept` leaves out. Sets the session's home: the first of that order before health is looked at (a
 * fixed order, every group a single target, is a home too).
 */
export function targetsFor(ctx: CallContext, route: ResolvedRoute, accept?: (t: ResolvedTarget) => boolean): ResolvedTarget[] {
  const ordered = orderTargets(route, Math.random, ctx.sessionKey);
  const targets = accept ? ordered.filter(accept) : ordered;
  if (ctx.sessionKey !== undefined || route.groups.every((g) => g.length === 1)) ctx.home = targets[0];
  return targets;
}

/**
 * After the upstream refused encrypted content it cannot read (sealed by another account: a session back home
 * from where it moved, or a route without affinity): the payload again without any sealed item, once per
 * request; undefined when that is not the refusal, was tried already, or there is nothing to leave out.
 * See docs/resilience.md#session-affinity.
 */
export function unsealedPayload(ctx: CallContext, status: number, text: string, rebuild: () => string | Buffer): string | Buffer | undefined {
  if (ctx.unseal || !isSealedRefusal(status, text)) return undefined;
  ctx.unseal = true;
  const payload = rebuild();
  return ctx.sealedDropped ? payload : undefined;
}

/** The wait a 429 asks for, capped; a default when it names none. */
export function rateLimitWait(cfg: BackoffConfig, headers: Record<string, string | string[] | undefined>): number {
  const asked = upstreamWaitMs(headers);
  return Math.min(asked ?? cfg.upstreamRateLimitBackoffMs, cfg.upstreamMaxBackoffMs);
}

/** Backs a target off (shared through Redis where configured), counted and logged for the operator. */
export function holdTarget(backoff: TargetBackoff, metrics: GatewayMetrics, logger: Logger, c: CircuitLabels, ms: number, reason: BackoffReason): void {
  if (!(ms > 0)) return;
  backoff.hold(backoffKey(c), ms, reason);
  metrics.upstreamBackoff(c.provider, reason);
  const what = reason === 'quota' ? 'the account is out of credit or quota: the operator must act' : 'rate limited (HTTP 429)';
  logger.warn(`${c.provider}/${c.model} backed off for ${Math.round(ms)} ms: ${what}`);
}

export const DEFAULT_MAX_ATTEMPTS = 2;
const DEFAULT_BACKOFF_MS = 250;
/** A longer Retry-After is better spent on the next target than waiting. */
export const MAX_RETRY_AFTER_MS = 30_000;

/** The wait before retrying the same target: what the upstream asked for, else exponential with jitter; capped. */
export function retryDelayMs(backoffMs: number | undefined, attempt: number, asked: number | undefined): number {
  const exp = (backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1);
  return Math.min(asked ?? exp / 2 + Math.random() * (exp / 2), MAX_RETRY_AFTER_MS);
}
