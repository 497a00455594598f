import { Dispatcher, request } from 'undici';
import { OpenAIAdapter } from '../openai/openai.adapter';
import { Operation, PrepareContext, ProviderAdapter, ResolvedProvider } from '../../provider.adapter';

/** Ollama: OpenAI-compatible /v1 on port 11434, no key, models from /api/tags, costs nothing unless priced. */
export class OllamaAdapter extends OpenAIAdapter {
  override readonly kind: ProviderAdapter['kind'] = 'ollama';
  override readonly defaultBaseUrl = 'http://localhost:11434/v1';
  override readonly responsesNativeByDefault = false;

  override prepare(_op: Operation, _body: Record<string, unknown>, _p: ResolvedProvider, _ctx: PrepareContext): void {}

  override errorHint(status: number, model: string): string {
    return status === 404 ? ` Pull it on the Ollama host first: \`ollama pull ${model}\`.` : '';
  }

  async discoverModels(p: ResolvedProvider, signal: AbortSignal, dispatcher?: Dispatcher): Promise<string[]> {
    const root = p.baseUrl.replace(/\/v1$/, '');
    const res = await request(`${root}/api/tags`, { signal, headersTimeout: 5000, bodyTimeout: 5000, ...(dispatcher ? { dispatcher } : {}) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`GET /api/tags answered ${res.statusCode}`);
    }
    const json = (await res.body.json()) as { models?: { name?: string; model?: string }[] };
    return (json.models ?? []).map((m) => m.name ?? m.model ?? '').filter(Boolean);
  }
}
