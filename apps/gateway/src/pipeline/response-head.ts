import type { DataPlaneResponse } from './http.types';
import type { CallContext } from './call-context';

/**
 * The client's response head: the given headers, the limits' headers (remaining quota), the output cap the
 * budget afforded, which provider/model served and the upstream's own request id. Every answer, success or
 * error, goes through here.
 */
export function writeHead(ctx: CallContext, res: DataPlaneResponse, status: number, headers: Readonly<Record<string, string>>): void {
  const t = ctx.target;
  const h: Record<string, string> = { ...headers, ...(ctx.admission?.headers ?? {}) };
  // The budget only afforded this much output (docs/limits.md): say so, or a cut-off answer is a mystery.
  if (ctx.outputCap !== undefined) h['x-gateway-output-cap'] = String(ctx.outputCap);
  // Nothing is dropped silently: fields and tools the serving (chat-only) provider could not be given.
  if (ctx.dropped?.length) h['x-gateway-dropped'] = ctx.dropped.join(',');
  if (t) {
    h['x-gateway-provider'] = t.provider.name;
    h['x-gateway-target'] = `${t.provider.name}/${ctx.upstreamModel ?? ''}`;
    // Session affinity (docs/resilience.md): whether the session is on its home target's account, and what was left out if not.
    if (ctx.sessionKey !== undefined && ctx.home) {
      h['x-gateway-affinity'] = ctx.home.provider.id === t.provider.id ? 'home' : 'moved';
      if (ctx.sealedDropped) h['x-gateway-sealed-dropped'] = String(ctx.sealedDropped);
    }
    // Not `openai-model`: Codex reads one that differs from the model it asked for as a safety reroute.
    const served = ctx.upstreamServedModel ?? ctx.upstreamModel;
    if (served) h['x-gateway-served-model'] = served;
  }
  if (ctx.upstreamRequestId) h['x-upstream-request-id'] = ctx.upstreamRequestId;
  res.writeHead(status, h);
}
