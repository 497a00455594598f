import { OpenAIAdapter, ResolvedProvider } from '@gw/providers';
import type { ResolvedRoute, ResolvedTarget } from '@gw/routing';
import type { Principal } from '@gw/tenancy';
import { CallContext } from './call-context';

export const principal = (over: Partial<Principal> = {}): Principal => ({
  keyId: 'k1',
  keyName: 'k',
  keyPrefix: 'sk-gw-AAAAAA',
  tenantId: 't1',
  tenantName: 'acme',
  allowedModels: null,
  allowedIps: null,
  expiresAt: null,
  keyLimits: {},
  tenantLimits: {},
  ...over,
});

export const provider = (over: Partial<ResolvedProvider> = {}): ResolvedProvider => ({
  id: 'p1',
  name: 'local',
  kind: 'openai',
  baseUrl: 'http://127.0.0.1:1/v1',
  credential: null,
  settings: {},
  enabled: true,
  adapter: new OpenAIAdapter(),
  responsesNative: true,
  ...over,
});

export const target = (model: string | null = 'up-model', p: ResolvedProvider = provider()): ResolvedTarget => ({ provider: p, model }) as ResolvedTarget;

export const route = (targets: ResolvedTarget[] = [target()]): ResolvedRoute => ({ id: 'r1', pattern: 'gpt-*', groups: [targets], settings: {} });

/** A call context as the pipeline makes one, routed to `targets`. */
export function context(model = 'gpt-x', targets?: ResolvedTarget[]): CallContext {
  const ctx = new CallContext('req_abc', principal(), 'chat', model);
  ctx.route = route(targets);
  return ctx;
}
