type Body = Record<string, unknown>;

/** Most choices a chat request may ask for (OpenAI's own limit for `n`). */
export const MAX_CHOICES = 128;

/**
 * A chat body's output cap lowered to `cap` (a budget admitted the request only that far). The client's
 * own fields are lowered; a body with none gets the one its provider reads (`max_completion_tokens` for
 * OpenAI, whose reasoning models refuse `max_tokens`; `max_tokens` for Ollama and OpenRouter).
 */
export function capChatOutput(b: Body, cap: number, providerKind: string): void {
  let set = false;
  for (const f of ['max_completion_tokens', 'max_tokens']) {
    const v = b[f];
    if (typeof v === 'number') {
      b[f] = Math.min(v, cap);
      set = true;
    }
  }
  if (!set) b[providerKind === 'openai' ? 'max_completion_tokens' : 'max_tokens'] = cap;
}

/** The same for a Responses API body (passed through natively). */
export function capResponsesOutput(b: Body, cap: number): void {
  const v = b.max_output_tokens;
  b.max_output_tokens = typeof v === 'number' ? Math.min(v, cap) : cap;
}
