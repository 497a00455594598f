import type { CompactionOrigin, CompactionSeal } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { CallContext } from '../pipeline/call-context';

/**
 * What a compaction the gateway makes for a chat-only target needs: our ids, the model as the client named it,
 * and a sealer bound to the request's tenant and that target's provider.
 */
export function compactionOrigin(ctx: CallContext, seal: CompactionSeal, t: ResolvedTarget, model: unknown): CompactionOrigin {
  const tenantId = ctx.principal.tenantId;
  const providerId = t.provider.id;
  return {
    responseId: `resp_${ctx.requestId.replace(/^req_/, '')}`,
    model: ctx.model ?? String(model),
    createdAt: Math.floor(ctx.startedAt.getTime() / 1000),
    seal: (summary) => seal.seal(summary, tenantId, providerId),
  };
}
