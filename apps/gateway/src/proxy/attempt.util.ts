// The stateless parts of an upstream attempt (UpstreamDispatcher): waits, timeouts, labels, the serialised body.
import { Errors, OpenAIError } from '@gw/common';
import type { RouteSettings } from '@gw/db';
import { ResolvedRoute, ResolvedTarget, orderTargets } from '@gw/routing';
import type { CallContext } from '../pipeline/call-context';
import { CircuitLabels } from './circuit-breaker';
import { isSealedRefusal, isTimeoutError } from './upstream-error';

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

/**
 * The serialised upstream body for one target. It is built from the client's request alone, so a
 * failure here is the request's fault (an odd shape the translation cannot take): 400, never retried.
 */
export function payloadFor(provider: string, bodyFor: (t: ResolvedTarget) => Record<string, unknown>, target: ResolvedTarget): string {
  try {
    return JSON.stringify(bodyFor(target));
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
export function unsealedPayload(ctx: CallContext, status: number, text: string, rebuild: () => string): string | undefined {
  if (ctx.unseal || !isSealedRefusal(status, text)) return undefined;
  ctx.unseal = true;
  const payload = rebuild();
  return ctx.sealedDropped ? payload : undefined;
}
