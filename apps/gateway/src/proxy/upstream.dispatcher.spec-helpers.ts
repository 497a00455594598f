import type { GatewayMetrics } from '@gw/observability';
import type { ResolvedProvider, UpstreamClient } from '@gw/providers';
import type { ResolvedRoute } from '@gw/routing';
import type { Principal } from '@gw/tenancy';
import { CallContext } from '../pipeline/call-context';
import { CircuitBreaker } from './circuit-breaker';
import { MemoryTargetBackoff } from './target.backoff';
import type { BackoffConfig } from './attempt.util';
import { UpstreamDispatcher } from './upstream.dispatcher';

export type Reply = number | Error | 'hang' | { status: number; body?: string; headers?: Record<string, string> };

export const CFG: BackoffConfig = { upstreamRateLimitBackoffMs: 1000, upstreamMaxBackoffMs: 60_000, upstreamQuotaBackoffMs: 60_000 };

export function provider(name: string): ResolvedProvider {
  return {
    id: `id-${name}`,
    name,
    kind: 'openai',
    baseUrl: `http://${name}.test/v1`,
    credential: null,
    settings: {},
    enabled: true,
    responsesNative: true,
    adapter: { headers: () => ({}), path: (op: string) => `/${op}`, errorHint: () => '' } as unknown as ResolvedProvider['adapter'],
  };
}

/** An UpstreamClient whose answers are scripted per provider host, and which records every call. */
export function upstream(script: Record<string, Reply[]>) {
  const calls: string[] = [];
  const client = {
    request: (url: string, opts: { signal: AbortSignal }) => {
      const host = new URL(url).hostname.split('.')[0];
      calls.push(host);
      const r = script[host]?.shift() ?? 200;
      if (r === 'hang') {
        return new Promise((_, reject) => opts.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      }
      if (r instanceof Error) return Promise.reject(r);
      const { status, body = '{"error":{"message":"nope"}}', headers = {} } = typeof r === 'number' ? { status: r } : r;
      return Promise.resolve({ statusCode: status, headers, body: { text: async () => body } });
    },
  };
  return { client: client as unknown as UpstreamClient, calls };
}

export const metrics = new Proxy({}, { get: () => () => undefined }) as GatewayMetrics;
export const A = provider('a');
export const B = provider('b');

export function setup(script: Record<string, Reply[]>, targets = [A, B], maxAttempts = 1) {
  const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000, now: () => 0 });
  const { client, calls } = upstream(script);
  const backoff = new MemoryTargetBackoff();
  const dispatcher = new UpstreamDispatcher(client, metrics, breaker, backoff, CFG);
  const route: ResolvedRoute = {
    id: 'r',
    pattern: 'm',
    settings: { maxAttempts, backoffMs: 1 },
    groups: targets.map((p) => [{ provider: p, model: 'up', weight: 1 }]),
  };
  const send = () => {
    const ctx = new CallContext('req-1', {} as Principal, 'chat', 'm');
    ctx.route = route;
    return { ctx, result: dispatcher.send(ctx, 'chat', false, () => ({ model: 'up' })) };
  };
  return { breaker, backoff, calls, send };
}
