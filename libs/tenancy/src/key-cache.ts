import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { sha256Hex } from '@gw/common';
import { CacheReloader, ChangeFeed, LimitSettings } from '@gw/db';
import { ActiveKeyRow, ApiKeyRepository } from './api-key.repository';

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

/**
 * `not_ready`: the key set has not been loaded yet (start-up with the database unreachable): nothing can be
 * told apart, so the caller answers 503 rather than calling a real key unknown.
 */
export type KeyLookup = { ok: true; principal: Principal } | { ok: false; reason: 'unknown' | 'expired' | 'not_ready' };

export interface KeyCacheStats {
  /** Usable keys in the current snapshot. */
  keys: number;
  /** Completed loads (the first one makes the cache ready). */
  loads: number;
  /** Duration of the last completed load, ms. */
  lastLoadMs: number;
  /** When the current snapshot was taken (epoch ms), null before the first load. */
  loadedAt: number | null;
}

/**
 * The whole set of usable keys (not revoked, tenant enabled) by sha256, in memory. Loaded at start (readiness
 * stays false until then) and reloaded whole when the change feed fires, every minute anyway, and with backoff
 * after a failed load (see CacheReloader). A lookup never reads the database: a key the snapshot does not
 * have is unknown, so an anonymous caller spraying random keys costs a hash and a map miss, and a key created
 * or revoked on another replica takes effect with the next reload (within CACHE_REFRESH_MS, by the feed's poll).
 * A load builds a new map and swaps it in one assignment: a lookup sees the old set or the new, never half.
 */
@Injectable()
export class KeyCache implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('KeyCache');
  private byHash: ReadonlyMap<string, Principal> = new Map();
  private loaded = false;
  private readonly counters: KeyCacheStats = { keys: 0, loads: 0, lastLoadMs: 0, loadedAt: null };
  private readonly used = new Set<string>();
  private readonly reloader = new CacheReloader('KeyCache', () => this.load());
  private touchTimer?: NodeJS.Timeout;

  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly changes: ChangeFeed,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Never rejects: with the database down at start the app still starts, not ready, and the load is retried.
    await this.reloader.start(this.changes);
    this.touchTimer = setInterval(() => void this.flushTouches(), 5000);
    this.touchTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.reloader.stop();
    if (this.touchTimer) clearInterval(this.touchTimer);
    await this.flushTouches();
  }

  /** True once a key set has been loaded; until then every lookup is `not_ready`. */
  get ready(): boolean {
    return this.loaded;
  }

  stats(): KeyCacheStats {
    return { ...this.counters };
  }

  /** Coalesces bursts of changes into at most one reload in flight plus one queued; never rejects (retries). */
  reload(): Promise<void> {
    return this.reloader.reload();
  }

  private async load(): Promise<void> {
    const t0 = performance.now();
    const next = new Map<string, Principal>();
    // One tenant name and limits object per tenant, shared by its keys (a 100k-key tenant stores them once).
    const tenants = new Map<string, { id: string; name: string; limits: LimitSettings }>();
    await this.keys.forEachActive((r) => next.set(r.key_hash, toPrincipal(r, tenants)));
    this.byHash = next;
    this.loaded = true;
    this.counters.keys = next.size;
    this.counters.loads++;
    this.counters.lastLoadMs = Math.round(performance.now() - t0);
    this.counters.loadedAt = Date.now();
    if (this.counters.lastLoadMs > 1000) this.logger.warn(`loaded ${next.size} keys in ${this.counters.lastLoadMs} ms`);
  }

  /** From memory only: one sha256 and one map read. Expiry is checked here, against the clock. */
  lookup(secret: string): KeyLookup {
    if (!this.loaded) return { ok: false, reason: 'not_ready' };
    const p = this.byHash.get(sha256Hex(secret));
    if (!p) return { ok: false, reason: 'unknown' };
    if (p.expiresAt !== null && p.expiresAt <= Date.now()) return { ok: false, reason: 'expired' };
    this.used.add(p.keyId);
    return { ok: true, principal: p };
  }

  private async flushTouches(): Promise<void> {
    if (!this.used.size) return;
    const ids = [...this.used];
    this.used.clear();
    await this.keys.touch(ids).catch((e: unknown) => this.logger.warn(`last_used_at update failed: ${(e as Error).message}`));
  }
}

function toPrincipal(r: ActiveKeyRow, tenants: Map<string, { id: string; name: string; limits: LimitSettings }>): Principal {
  let t = tenants.get(r.tenant_id);
  if (!t) tenants.set(r.tenant_id, (t = { id: r.tenant_id, name: r.tenant_name, limits: r.tenant_limits ?? {} }));
  return {
    keyId: r.id,
    keyName: r.name,
    keyPrefix: r.prefix,
    tenantId: t.id,
    tenantName: t.name,
    allowedModels: r.allowed_models?.length ? r.allowed_models : null,
    allowedIps: r.allowed_ips?.length ? r.allowed_ips : null,
    expiresAt: r.expires_at ? new Date(r.expires_at).getTime() : null,
    keyLimits: r.limits ?? {},
    tenantLimits: t.limits,
  };
}
