import { ProviderKind } from '@gw/db';
import { ProviderAdapter } from './provider.adapter';
import { OllamaAdapter } from './providers/ollama/ollama.adapter';
import { OpenAIAdapter } from './providers/openai/openai.adapter';
import { OpenRouterAdapter } from './providers/openrouter/openrouter.adapter';

/** Adding a provider = a folder under providers/ and one line here. */
export const ADAPTERS: Record<ProviderKind, ProviderAdapter> = {
  openai: new OpenAIAdapter(),
  openrouter: new OpenRouterAdapter(),
  ollama: new OllamaAdapter(),
};

export function adapterFor(kind: ProviderKind): ProviderAdapter {
  return ADAPTERS[kind];
}
