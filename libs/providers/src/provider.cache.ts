import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SecretBox } from '@gw/common';
import { CacheReloader, ChangeFeed, ProviderEntity } from '@gw/db';
import { ResolvedProvider } from './provider.adapter';
import { adapterFor } from './provider.registry';
import { ProviderRepository } from './provider.repository';
import { SECRET_BOX } from './provider.service';

/**
 * Providers with decrypted credentials, held in memory only, reloaded when admin data changes (a failed
 * reload is retried with backoff, and a full reload runs every minute anyway: see CacheReloader).
 */
@Injectable()
export class ProviderCache implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ProviderCache');
  private byId = new Map<string, ResolvedProvider>();
  private readonly listeners = new Set<() => void>();
  private readonly reloader = new CacheReloader('ProviderCache', () => this.load());

  constructor(
    private readonly repo: ProviderRepository,
    private readonly changes: ChangeFeed,
    @Inject(SECRET_BOX) private readonly box: SecretBox,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.reloader.start(this.changes);
  }

  onApplicationShutdown(): void {
    this.reloader.stop();
  }

  get(id: string): ResolvedProvider | undefined {
    return this.byId.get(id);
  }

  all(): ResolvedProvider[] {
    return [...this.byId.values()];
  }

  /** Routing rebuilds its table after providers changed. */
  onReload(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** Coalesced (one in flight plus one queued); never rejects: a failure is retried with backoff. */
  reload(): Promise<void> {
    return this.reloader.reload();
  }

  private async load(): Promise<void> {
    const rows = await this.repo.list();
    this.byId = new Map(rows.map((r) => [r.id, this.resolve(r)]));
    for (const l of this.listeners) l();
  }

  private resolve(r: ProviderEntity): ResolvedProvider {
    const adapter = adapterFor(r.kind);
    let credential: string | null = null;
    if (r.credentialEnc) {
      try {
        credential = this.box.open(r.credentialEnc);
      } catch (e) {
        // Never log the sealed value; the name and reason are enough to act on.
        this.logger.error(`provider "${r.name}": credential cannot be decrypted (${(e as Error).message})`);
      }
    }
    return {
      id: r.id,
      name: r.name,
      kind: r.kind,
      baseUrl: r.baseUrl,
      credential,
      settings: r.settings ?? {},
      enabled: r.enabled,
      adapter,
      responsesNative: r.settings?.responsesApi ?? adapter.responsesNativeByDefault,
    };
  }
}
