import type { NormalisedUsage, ResponsesUsage } from './translate.types';

// Usage payloads come straight off provider JSON, so every field is checked rather than trusted:
// a missing or non-numeric count becomes 0 instead of NaN leaking into metering.

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

/**
 * Chat Completions usage -> NormalisedUsage.
 * OpenRouter adds `usage.cost` (USD; its credits are dollars); other providers have no cost,
 * so `costUsd` is only set when the provider actually reported one.
 */
export function chatUsageToNormalised(u: unknown): NormalisedUsage {
  const o = obj(u);
  const usage: NormalisedUsage = {
    inputTokens: num(o?.prompt_tokens),
    outputTokens: num(o?.completion_tokens),
    cachedTokens: num(obj(o?.prompt_tokens_details)?.cached_tokens),
    reasoningTokens: num(obj(o?.completion_tokens_details)?.reasoning_tokens),
  };
  const cost = o?.cost;
  if (typeof cost === 'number' && Number.isFinite(cost)) usage.costUsd = cost;
  return usage;
}

/** Responses API usage -> NormalisedUsage (used when the upstream itself speaks Responses). */
export function responsesUsageToNormalised(u: unknown): NormalisedUsage {
  const o = obj(u);
  const usage: NormalisedUsage = {
    inputTokens: num(o?.input_tokens),
    outputTokens: num(o?.output_tokens),
    cachedTokens: num(obj(o?.input_tokens_details)?.cached_tokens),
    reasoningTokens: num(obj(o?.output_tokens_details)?.reasoning_tokens),
  };
  const cost = o?.cost;
  if (typeof cost === 'number' && Number.isFinite(cost)) usage.costUsd = cost;
  return usage;
}

/**
 * NormalisedUsage -> Responses `usage` block. Both APIs count cached tokens inside the input
 * total and reasoning tokens inside the output total, so no arithmetic is needed.
 * `costUsd` is intentionally not written out: upstream cost is the gateway's business, not the tenant's.
 */
export function normalisedToResponsesUsage(u: NormalisedUsage): ResponsesUsage {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}
