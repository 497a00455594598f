/** Top-level fields the gateway reads to route, admit, meter or translate a request (any endpoint). */
const READ = new Set([
  'model',
  'stream',
  'stream_options',
  'service_tier',
  'max_tokens',
  'max_completion_tokens',
  'max_output_tokens',
  'n',
  'background',
  'previous_response_id',
  'store',
  'input',
  'messages',
  'tools',
  'tool_choice',
  'instructions',
  'reasoning',
  'include',
  'prompt_cache_key',
  'conversation',
  'compaction_trigger',
]);

/** How Go's encoding/json (Ollama) matches a key to a field: case-insensitively, with ſ as s and K (Kelvin) as k. */
function fold(key: string): string {
  return key.toLowerCase().replace(/ſ/g, 's');
}

/**
 * A top-level key another parser may read as one the gateway read under its exact name: `"Model"` beside
 * `"model"` (Go matches keys case-insensitively and keeps the last, so Ollama would serve the model the gateway
 * neither allowed nor priced), or `"Stream"` alone. Undefined when there is none; such a body is refused.
 */
export function ambiguousKey(body: Record<string, unknown>): string | undefined {
  for (const k in body) {
    const f = fold(k);
    if (f !== k && (READ.has(f) || Object.prototype.hasOwnProperty.call(body, f))) return k;
  }
  return undefined;
}
