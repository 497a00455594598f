import { Errors, isObject } from '@gw/common';
import { CompactionSeal } from './compaction.seal';

type Body = Record<string, unknown>;

/**
 * What the chat model is asked for when the gateway compacts for a chat-only provider (the Responses API's
 * `compaction_trigger`, or `/v1/responses/compact`). Our own wording of the same checkpoint idea Codex uses for its
 * local compaction: a summary another model can resume from.
 */
export const COMPACTION_PROMPT =
  'Context checkpoint: the conversation above is about to be replaced by a summary. Write that summary for the ' +
  'model that will continue the work: what the user asked for, what has been done and decided so far (files, ' +
  'commands, results), constraints and preferences to keep, and the exact next steps. Be concise and specific; ' +
  'do not call tools.';

/** Put before a gateway-made summary when it is expanded back into the conversation. */
export const SUMMARY_PREFIX = 'Summary of the earlier part of this conversation (written when its context was compacted):';

/** Item types a compaction comes back as (`compaction`; older Codex versions said `compaction_summary`). */
const COMPACTION_TYPES = new Set(['compaction', 'compaction_summary']);

function isTrigger(item: unknown): boolean {
  return isObject(item) && item.type === 'compaction_trigger';
}

/** Whether a Responses request asks for remote compaction v2 (an input item `compaction_trigger`). */
export function hasCompactionTrigger(body: Body): boolean {
  return Array.isArray(body.input) && body.input.some(isTrigger);
}

/**
 * The request with every compaction item the gateway made replaced by the summary it holds, as a user message
 * (how Codex itself carries a summary after a local compaction): such an item is never sent to any provider.
 * Returns `body` itself when there is none (nothing copied). An item with the gateway's prefix it cannot open (another
 * tenant's, altered, or sealed under a previous master key) is the client's 400: sending it on would fail upstream.
 */
export function expandGatewayCompactions(body: Body, seal: CompactionSeal, tenantId: string): Body {
  const input = body.input;
  if (!Array.isArray(input)) return body;
  let out: unknown[] | undefined;
  for (let i = 0; i < input.length; i++) {
    const item: unknown = input[i];
    if (!isObject(item) || !COMPACTION_TYPES.has(item.type as string) || !CompactionSeal.isGatewayMade(item.encrypted_content)) continue;
    const opened = seal.open(item.encrypted_content, tenantId);
    if (!opened) {
      throw Errors.badRequest(
        `\`input[${i}]\` is a compaction item this gateway made but cannot read (made for another tenant, altered, or sealed before the master key changed); start a new session.`,
        `input[${i}]`,
      );
    }
    out ??= input.slice();
    out[i] = summaryMessage(opened.summary);
  }
  return out ? { ...body, input: out } : body;
}

export function summaryMessage(summary: string): Record<string, unknown> {
  return { type: 'message', role: 'user', content: [{ type: 'input_text', text: `${SUMMARY_PREFIX}\n${summary}` }] };
}

/**
 * The Responses request a chat-only provider is sent to summarise `body`'s conversation: its input without the
 * trigger, then the checkpoint prompt; tools stay declared (the history may call them) but none may be called.
 */
export function summaryRequest(body: Body): Body {
  const input: unknown[] =
    typeof body.input === 'string'
      ? [{ type: 'message', role: 'user', content: body.input }]
      : Array.isArray(body.input)
        ? body.input.filter((i) => !isTrigger(i))
        : [];
  input.push({ type: 'message', role: 'user', content: [{ type: 'input_text', text: COMPACTION_PROMPT }] });
  const out: Body = { ...body, input };
  delete out.previous_response_id;
  if (Array.isArray(out.tools) && out.tools.length) out.tool_choice = 'none';
  else delete out.tool_choice;
  return out;
}

/** The user messages of a compacted conversation (what `/responses/compact` returns before its compaction item). */
export function userMessagesOf(body: Body): Record<string, unknown>[] {
  if (typeof body.input === 'string') return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: body.input }] }];
  if (!Array.isArray(body.input)) return [];
  return body.input.filter((i): i is Record<string, unknown> => isObject(i) && (i.type === 'message' || i.type === undefined) && i.role === 'user');
}
