import { chatUsageToNormalised, responsesUsageToNormalised, NormalisedUsage } from '../../translate';
import { Operation, PrepareContext, ProviderAdapter, ResolvedProvider } from '../../provider.adapter';

const PATHS: Record<Operation, string> = {
  chat: '/chat/completions',
  responses: '/responses',
  responses_compact: '/responses/compact',
  embeddings: '/embeddings',
};

/** The reference: everything is OpenAI's wire format already. */
export class OpenAIAdapter implements ProviderAdapter {
  readonly kind: ProviderAdapter['kind'] = 'openai';
  readonly defaultBaseUrl: string = 'https://api.openai.com/v1';
  readonly responsesNativeByDefault: boolean = true;

  headers(p: ResolvedProvider): Record<string, string> {
    const h: Record<string, string> = { ...(p.settings.headers ?? {}) };
    if (p.credential) h.authorization = `Bearer ${p.credential}`;
    return h;
  }

  path(op: Operation): string {
    return PATHS[op];
  }

  prepare(_op: Operation, _body: Record<string, unknown>, _p: ResolvedProvider, _ctx: PrepareContext): void {}

  usage(op: Operation, raw: unknown): NormalisedUsage {
    return op === 'responses' || op === 'responses_compact' ? responsesUsageToNormalised(raw) : chatUsageToNormalised(raw);
  }

  errorHint(_status: number, _model: string): string {
    return '';
  }
}
