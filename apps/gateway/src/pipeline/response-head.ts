import type { Response } from 'express';
import type { CallContext } from './call-context';

/**
 * The client's response head: the given headers, the limits' headers (remaining quota), the output cap the
 * budget afforded and which provider/model served. Every answer, success or error, goes through here.
 */
export function writeHead(ctx: CallContext, res: Response, status: number, headers: Readonly<Record<string, string>>): void {
  const t = ctx.target;
  const h: Record<string, string> = { ...headers, ...(ctx.admission?.headers ?? {}) };
  // The budget only afforded this much output (docs/limits.md): say so, or a cut-off answer is a mystery.
  if (ctx.outputCap !== undefined) h['x-gateway-output-cap'] = String(ctx.outputCap);
  // Nothing is dropped silently: fields and tools the serving (chat-only) provider could not be given.
  if (ctx.dropped?.length) h['x-gateway-dropped'] = ctx.dropped.join(',');
  if (t) {
    h['x-gateway-provider'] = t.provider.name;
    h['x-gateway-target'] = `${t.provider.name}/${ctx.upstreamModel ?? ''}`;
  }
  res.writeHead(status, h);
}
