import { OpenAIAdapter } from '../openai/openai.adapter';
import { Operation, PrepareContext, ProviderAdapter, ResolvedProvider } from '../../provider.adapter';

/**
 * OpenRouter: OpenAI-compatible at /api/v1 with vendor/model ids, a `provider` preferences object
 * (e.g. {"sort":"price"}), attribution headers, and its own cost in the usage block.
 */
export class OpenRouterAdapter extends OpenAIAdapter {
  override readonly kind: ProviderAdapter['kind'] = 'openrouter';
  override readonly defaultBaseUrl = 'https://openrouter.ai/api/v1';
  /** OpenRouter's Responses API is newer and partial; chat translation is the safe default. */
  override readonly responsesNativeByDefault = false;

  override headers(p: ResolvedProvider): Record<string, string> {
    return {
      'http-referer': 'https://github.com/llm-gateway',
      'x-title': 'LLM Gateway',
      ...super.headers(p),
    };
  }

  override prepare(op: Operation, body: Record<string, unknown>, p: ResolvedProvider, ctx: PrepareContext): void {
    if (op === 'embeddings') return;
    const prefs = ctx.providerPreferences ?? p.settings.providerPreferences;
    // The client's own `provider` object wins over the route's and provider's defaults.
    if (prefs && body.provider === undefined) body.provider = prefs;
    // OpenRouter reports its cost in usage only with usage accounting on: always asked, whatever the client
    // sent, since that cost is what the request is billed.
    body.usage = { include: true };
    // Its own fallback list (`models`, `route`) would let another model than the routed (and allowed, and
    // reserved-for) one serve: the gateway's route decides which model serves.
    delete body.models;
    delete body.route;
  }
}
