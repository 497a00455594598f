import type { NormalisedUsage, ResponsesUsage } from './translate.types';

// Usage payloads come straight off provider JSON, so every field is checked rather than trusted:
// counts are non-negative integers no larger than the ledger's int columns take, and a cost is a
// finite non-negative amount below a billion dollars. Anything else counts as 0 (or as no cost),
// so one provider's odd number can neither overflow a ledger insert nor credit a budget.

/** Largest token count recorded (Postgres `integer`). */
export const MAX_USAGE_TOKENS = 2_147_483_647;
/** A reported cost at or above this (USD) is not believed. */
export const MAX_USAGE_COST_USD = 1e9;

function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return 0;
  return Math.min(Math.round(v), MAX_USAGE_TOKENS);
}

function cost(v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  if (v < 0 || v >= MAX_USAGE_COST_USD) return undefined;
  return v;
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
  const writes = num(obj(o?.prompt_tokens_details)?.cache_write_tokens);
  if (writes) usage.cacheWriteTokens = writes;
  const c = cost(o?.cost);
  if (c !== undefined) usage.costUsd = c;
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
  const writes = num(obj(o?.input_tokens_details)?.cache_write_tokens);
  if (writes) usage.cacheWriteTokens = writes;
  const c = cost(o?.cost);
  if (c !== undefined) usage.costUsd = c;
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
