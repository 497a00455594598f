import type { ChatCompletionRequest } from './translate.types';

/** Which chat dialect a translated request is fitted to (the provider kind; `openai` = any OpenAI-compatible server). */
export type ChatProfile = 'openrouter' | 'ollama' | 'openai';

/** The values Ollama's OpenAI layer accepts for `reasoning_effort` (anything else is its 400). */
const OLLAMA_EFFORTS: Readonly<Record<string, string>> = { none: 'none', minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'high' };

export interface FittedChatRequest {
  body: ChatCompletionRequest;
  /** Labels of what this provider does not take (added to the translation's own `dropped`). */
  dropped: string[];
}

/**
 * Fits the full chat translation (`responsesRequestToChat` with `carryExtras` and reasoning on) to one
 * provider: renames what it names differently, removes what it does not take, and says what was removed.
 * The input is not modified (a translation serves every target of a route); a shallow copy is returned, with
 * the message list copied only when messages must change.
 *
 * - OpenRouter: `reasoning: {effort}` (its own field), `reasoning_details` and `reasoning` on assistant
 *   messages, `verbosity`, `prompt_cache_key` pass (OpenRouter forwards OpenAI parameters to the models
 *   that take them); `service_tier` is not an OpenRouter parameter: dropped.
 * - Ollama: `reasoning_effort` limited to the values it accepts (minimal → low, xhigh → high), `reasoning` on
 *   assistant messages (it becomes the message's thinking); no `reasoning_details`; `prompt_cache_key`,
 *   `verbosity`, `service_tier` dropped (it caches prompt prefixes by itself).
 * - OpenAI-compatible servers: OpenAI's chat fields (`reasoning_effort`, `verbosity`, `prompt_cache_key`,
 *   `service_tier`) pass; prior reasoning is not sent back (OpenAI's chat API rejects unknown message fields).
 */
export function fitChatRequest(profile: ChatProfile, chat: ChatCompletionRequest): FittedChatRequest {
  const body: ChatCompletionRequest = { ...chat };
  const dropped: string[] = [];
  const drop = (field: string, label: string): void => {
    if (body[field] === undefined) return;
    Reflect.deleteProperty(body, field);
    dropped.push(label);
  };
  if (profile === 'openrouter') {
    if (typeof body.reasoning_effort === 'string') {
      body.reasoning = { effort: body.reasoning_effort };
      delete body.reasoning_effort;
    }
    drop('service_tier', 'service_tier');
    return { body, dropped };
  }
  if (profile === 'ollama') {
    if (typeof body.reasoning_effort === 'string') {
      const effort = OLLAMA_EFFORTS[body.reasoning_effort];
      if (effort) body.reasoning_effort = effort;
      else drop('reasoning_effort', 'reasoning.effort');
    }
    drop('prompt_cache_key', 'prompt_cache_key');
    drop('verbosity', 'text.verbosity');
    drop('service_tier', 'service_tier');
    stripMessageFields(body, ['reasoning_details']);
    return { body, dropped };
  }
  stripMessageFields(body, ['reasoning', 'reasoning_details']);
  return { body, dropped };
}

function stripMessageFields(body: ChatCompletionRequest, fields: readonly string[]): void {
  if (!body.messages.some((m) => m.role === 'assistant' && fields.some((f) => f in m))) return;
  body.messages = body.messages.map((m) => {
    if (m.role !== 'assistant' || !fields.some((f) => f in m)) return m;
    const copy: Record<string, unknown> = { ...m };
    for (const f of fields) Reflect.deleteProperty(copy, f);
    return copy as unknown as typeof m;
  });
}
