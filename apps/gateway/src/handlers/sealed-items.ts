import type { ResolvedTarget } from '@gw/routing';
import type { Body } from '../pipeline/call-plan';

/**
 * What a provider sealed for itself in a Responses history: encrypted reasoning (`reasoning` items with
 * `encrypted_content`) and its remote-compaction items (`compaction`, also read as `compaction_summary`, and
 * `context_compaction`, as Codex's `ResponseItem` names them), readable only by the provider account that made them. A session that moved to another account (its home
 * target failed) must not send them there: the upstream would refuse the whole request.
 */

/**
 * Whether the gateway made this compaction item itself (for a chat-only provider): those are the gateway's
 * to read on any target and are left alone here. Until the gateway makes its own, none is.
 */
let madeByGateway: (item: Record<string, unknown>) => boolean = () => false;

/** Lets the code that makes gateway compaction items say how to recognise them. */
export function recogniseGatewayCompaction(test: (item: Record<string, unknown>) => boolean): void {
  madeByGateway = test;
}

const COMPACTION = new Set(['compaction', 'compaction_summary', 'context_compaction']);

function sealed(item: unknown): boolean {
  if (!item || typeof item !== 'object') return false;
  const it = item as Record<string, unknown>;
  if (typeof it.encrypted_content !== 'string' || it.encrypted_content === '') return false;
  if (it.type === 'reasoning') return true;
  return COMPACTION.has(it.type as string) && !madeByGateway(it);
}

/** Whether target `t` is another provider account than the session's home: the session moved. */
export function movedAccount(home: ResolvedTarget | undefined, t: ResolvedTarget): boolean {
  return home !== undefined && home.provider.id !== t.provider.id;
}

/**
 * The body without the items another account sealed, and how many were dropped; the body itself (not
 * copied) when there is none. The request is otherwise unchanged.
 */
export function withoutSealedItems(body: Body): { body: Body; dropped: number } {
  const input = body.input;
  if (!Array.isArray(input)) return { body, dropped: 0 };
  let dropped = 0;
  for (const it of input) if (sealed(it)) dropped++;
  if (!dropped) return { body, dropped };
  return { body: { ...body, input: input.filter((it) => !sealed(it)) }, dropped };
}
