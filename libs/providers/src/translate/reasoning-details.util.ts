import { isObject } from '@gw/common';

/**
 * OpenRouter's `reasoning_details` (structured reasoning blocks: text with signatures, encrypted blocks,
 * summaries) must go back verbatim on the next turn for some models to keep reasoning across tool calls.
 * Codex keeps a reasoning item's `encrypted_content` opaque and sends it back as it got it, so the blocks
 * travel there, as this prefix + base64 of their JSON. The prefix also tells that the gateway made the
 * value: a native (Responses API) provider cannot decrypt it and must never be sent it.
 */
export const GATEWAY_REASONING_PREFIX = 'gw.rd1.';

export function encodeReasoningDetails(details: readonly unknown[]): string {
  return GATEWAY_REASONING_PREFIX + Buffer.from(JSON.stringify(details), 'utf8').toString('base64');
}

/** The blocks in an `encrypted_content` the gateway made; undefined for anything else (e.g. OpenAI's own). */
export function decodeReasoningDetails(encrypted: unknown): unknown[] | undefined {
  if (!isGatewayReasoning(encrypted)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(encrypted.slice(GATEWAY_REASONING_PREFIX.length), 'base64').toString('utf8'));
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an `encrypted_content` value was made by the gateway (reasoning from a chat provider). */
export function isGatewayReasoning(encrypted: unknown): encrypted is string {
  return typeof encrypted === 'string' && encrypted.startsWith(GATEWAY_REASONING_PREFIX);
}

const TEXT_FIELDS = ['text', 'summary', 'data'] as const;

/**
 * Adds one stream delta's `reasoning_details` to what came before. OpenRouter streams a block in pieces that
 * share its `index` and `type`: their text-like fields are concatenated, any other field (signature, id,
 * format) is taken as sent. A block without an index is its own block.
 */
export function mergeReasoningDetails(into: Record<string, unknown>[], delta: unknown): void {
  if (!Array.isArray(delta)) return;
  for (const d of delta) {
    if (!isObject(d)) continue;
    const prev = typeof d.index === 'number' ? into.find((x) => x.index === d.index && x.type === d.type) : undefined;
    if (!prev) {
      into.push({ ...d });
      continue;
    }
    for (const [k, v] of Object.entries(d)) {
      if ((TEXT_FIELDS as readonly string[]).includes(k) && typeof v === 'string' && typeof prev[k] === 'string') prev[k] = prev[k] + v;
      else if (v !== null && v !== undefined) prev[k] = v;
    }
  }
}

/**
 * `input` without the reasoning items the gateway made (their `encrypted_content` only a chat provider's
 * translation reads): a native Responses provider would fail to decrypt them. Undefined when there are none,
 * so the common case allocates nothing.
 */
export function withoutGatewayReasoning(input: unknown): unknown[] | undefined {
  if (!Array.isArray(input)) return undefined;
  const items: unknown[] = input;
  const isOurs = (it: unknown): boolean => isObject(it) && it.type === 'reasoning' && isGatewayReasoning(it.encrypted_content);
  if (!items.some(isOurs)) return undefined;
  return items.filter((it) => !isOurs(it));
}
