import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { sha256Hex } from '@gw/common';
import { ApiKeyEntity, CacheReloader, ChangeFeed, LimitSettings, TenantEntity } from '@gw/db';
import { ApiKeyRepository } from './api-key.repository';
import { TenantRepository } from './tenant.repository';

/** Everything the hot path needs to know about the caller, resolved from memory. */
export interface Principal {
  keyId: string;
  keyName: string;
  keyPrefix: string;
  tenantId: string;
  tenantName: string;
  allowedModels: string[] | null;
  allowedIps: string[] | null;
  expiresAt: number | null;
  keyLimits: LimitSettings;
  tenantLimits: LimitSettings;
}

export type KeyLookup = { ok: true; principal: Principal } | { ok: false; reason: 'unknown' | 'expired' | 'tenant_disabled' };

const NEGATIVE_TTL_MS = 1000;

/**
 * In-memory snapshot of active keys by hash. Reloaded whole when the change feed fires (a failed reload is
 * retried with backoff, and a full reload runs every minute anyway: see CacheReloader); a miss falls back to
 * one indexed read (coalesced, negatively cached) so that a key created on another replica works at once
 * without letting unknown keys hammer the database. A miss read is only remembered if no reload started
 * while it ran: otherwise it could put a key revoked meanwhile back into the fresh snapshot.
 */
@Injectable()
export class KeyCache implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('KeyCache');
  private byHash = new Map<string, Principal>();
  private tenants = new Map<string, TenantEntity>();
  private readonly negative = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<Principal | undefined>>();
  private readonly used = new Set<string>();
  private readonly reloader = new CacheReloader('KeyCache', () => this.load());
  private touchTimer?: NodeJS.Timeout;

  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly tenantRepo: TenantRepository,
    private readonly changes: ChangeFeed,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.reloader.start(this.changes);
    this.touchTimer = setInterval(() => void this.flushTouches(), 5000);
    this.touchTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.reloader.stop();
    if (this.touchTimer) clearInterval(this.touchTimer);
    await this.flushTouches();
  }

  /** Coalesces bursts of changes into at most one reload in flight plus one queued; never rejects (retries). */
  reload(): Promise<void> {
    return this.reloader.reload();
  }

  private async load(): Promise<void> {
    const [tenants, keys] = await Promise.all([this.tenantRepo.list(), this.keys.listAllActive()]);
    const tmap = new Map(tenants.map((t) => [t.id, t]));
    const next = new Map<string, Principal>();
    for (const k of keys) {
      const p = this.toPrincipal(k, tmap);
      if (p) next.set(k.keyHash, p);
    }
    this.tenants = tmap;
    this.byHash = next;
    this.negative.clear();
  }

  async lookup(secret: string): Promise<KeyLookup> {
    const hash = sha256Hex(secret);
    let p = this.byHash.get(hash);
    if (!p) p = await this.missLookup(hash);
    if (!p) return { ok: false, reason: 'unknown' };
    if (p.expiresAt !== null && p.expiresAt <= Date.now()) return { ok: false, reason: 'expired' };
    this.used.add(p.keyId);
    return { ok: true, principal: p };
  }

  /**
   * `lookup` without the database: the principal of a key this process holds in memory and that has not
   * expired, else undefined (unknown here, or expired: ask `lookup`). Lets callers tell a known-good key
   * apart synchronously (the failed-authentication limiter reserves nothing for it).
   */
  lookupInMemory(secret: string): Principal | undefined {
    const p = this.byHash.get(sha256Hex(secret));
    if (!p || (p.expiresAt !== null && p.expiresAt <= Date.now())) return undefined;
    this.used.add(p.keyId);
    return p;
  }

  private missLookup(hash: string): Promise<Principal | undefined> {
    const neg = this.negative.get(hash);
    if (neg !== undefined && neg > Date.now()) return Promise.resolve(undefined);
    let pending = this.inflight.get(hash);
    if (!pending) {
      pending = (async () => {
        const generation = this.reloader.generation;
        try {
          const k = await this.keys.findActiveByHash(hash);
          const t = k ? (this.tenants.get(k.tenantId) ?? (await this.tenantRepo.get(k.tenantId)) ?? undefined) : undefined;
          const p = k && t ? this.toPrincipal(k, new Map([[t.id, t]])) : undefined;
          // A reload began while we read: what we read may predate a revocation (or a creation) that the
          // reload's snapshot already reflects. Answer this one request, but do not remember it.
          if (this.reloader.generation !== generation) return p;
          if (p) this.byHash.set(hash, p);
          else {
            if (this.negative.size > 10_000) this.negative.clear();
            this.negative.set(hash, Date.now() + NEGATIVE_TTL_MS);
          }
          return p;
        } finally {
          this.inflight.delete(hash);
        }
      })();
      this.inflight.set(hash, pending);
    }
    return pending;
  }

  private toPrincipal(k: ApiKeyEntity, tenants: Map<string, TenantEntity>): Principal | undefined {
    const t = tenants.get(k.tenantId);
    if (!t || !t.enabled || k.revokedAt) return undefined;
    return {
      keyId: k.id,
      keyName: k.name,
      keyPrefix: k.prefix,
      tenantId: t.id,
      tenantName: t.name,
      allowedModels: k.allowedModels && k.allowedModels.length ? k.allowedModels : null,
      allowedIps: k.allowedIps && k.allowedIps.length ? k.allowedIps : null,
      expiresAt: k.expiresAt ? k.expiresAt.getTime() : null,
      keyLimits: k.limits ?? {},
      tenantLimits: t.limits ?? {},
    };
  }

  private async flushTouches(): Promise<void> {
    if (!this.used.size) return;
    const ids = [...this.used];
    this.used.clear();
    await this.keys.touch(ids).catch((e: Error) => this.logger.warn(`last_used_at update failed: ${e.message}`));
  }
}
