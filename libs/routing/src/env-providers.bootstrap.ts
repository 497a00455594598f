import { Inject, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { DatabaseLock, DatabaseRepository } from '@gw/db';
import { ADAPTERS, EGRESS_POLICY, EgressChecker, ProviderInput, ProviderService, ResolvedProvider, UpstreamClient, egressRefusal } from '@gw/providers';
import { RouteService } from './route.service';

/**
 * Zero-config providers, as in the seed proxy: OPENAI_API_KEY, OPENROUTER_API_KEY and OLLAMA_BASE_URL
 * register (or update) a provider named after its kind, with default global routes:
 *   `gpt-oss*` and every model Ollama lists -> ollama;  `*\/*` (vendor/model ids) -> openrouter;  `*` -> openai.
 * Routes created by hand with the same pattern are left alone.
 */
@Injectable()
export class EnvProvidersBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger('EnvProviders');

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly providers: ProviderService,
    private readonly routes: RouteService,
    private readonly database: DatabaseRepository,
    @Inject(EGRESS_POLICY) private readonly egress: EgressChecker,
    @Optional() private readonly upstream?: UpstreamClient,
  ) {}

  /** An address the egress policy refuses is not registered (nor probed): logged, and the gateway starts without it. */
  private refused(variable: string, baseUrl: string): boolean {
    const err = egressRefusal(this.egress, baseUrl);
    if (!err) return false;
    this.logger.error(`${variable}=${baseUrl} refused, provider not registered: ${err.body.error.message}`);
    return true;
  }

  async onApplicationBootstrap(): Promise<void> {
    const wanted: { input: ProviderInput; patterns: string[] }[] = [];
    if (this.cfg.openaiApiKey && !this.refused('OPENAI_BASE_URL', this.cfg.openaiBaseUrl)) {
      wanted.push({ input: { name: 'openai', kind: 'openai', baseUrl: this.cfg.openaiBaseUrl, credential: this.cfg.openaiApiKey }, patterns: ['*'] });
    }
    if (this.cfg.openrouterApiKey && !this.refused('OPENROUTER_BASE_URL', this.cfg.openrouterBaseUrl)) {
      wanted.push({
        input: { name: 'openrouter', kind: 'openrouter', baseUrl: this.cfg.openrouterBaseUrl, credential: this.cfg.openrouterApiKey },
        patterns: ['*/*'],
      });
    }
    if (this.cfg.ollamaBaseUrl && !this.refused('OLLAMA_BASE_URL', this.cfg.ollamaBaseUrl)) {
      const baseUrl = this.cfg.ollamaBaseUrl.endsWith('/v1') ? this.cfg.ollamaBaseUrl : `${this.cfg.ollamaBaseUrl}/v1`;
      const models = await this.ollamaModels(baseUrl);
      wanted.push({ input: { name: 'ollama', kind: 'ollama', baseUrl, settings: { models } }, patterns: ['gpt-oss*', ...models] });
    }
    if (!wanted.length) return;
    // Gateway replicas start together: one registers, the others wait and find it done.
    await this.database.withLock(DatabaseLock.EnvProviders, async () => {
      for (const w of wanted) {
        const p = await this.providers.upsertByName(w.input);
        for (const pattern of w.patterns) {
          const existing = (await this.routes.list(null)).find((r) => r.modelPattern === pattern);
          if (!existing) await this.routes.create(null, { modelPattern: pattern, targets: [{ providerId: p.id }] });
        }
        this.logger.log(`provider "${p.name}" registered from the environment (${w.patterns.length} default route(s))`);
      }
    });
  }

  private async ollamaModels(baseUrl: string): Promise<string[]> {
    const probe = { baseUrl, settings: {} } as ResolvedProvider;
    try {
      // Through the upstream pool, so the probe obeys the egress policy at connect time like every call.
      return await ADAPTERS.ollama.discoverModels!(probe, AbortSignal.timeout(3000), this.upstream?.agent);
    } catch (e) {
      this.logger.warn(`Ollama at ${baseUrl} did not list its models (${(e as Error).message}); only gpt-oss* is routed to it.`);
      return [];
    }
  }
}
