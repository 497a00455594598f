import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { globToRegExp, isGlob, patternSpecificity } from '@gw/common';
import { CacheReloader, ChangeFeed, RouteEntity, RouteSettings } from '@gw/db';
import { ProviderCache, ResolvedProvider } from '@gw/providers';
import { RouteRepository } from './route.repository';

export interface ResolvedTarget {
  provider: ResolvedProvider;
  /** null: send the requested model name unchanged. */
  model: string | null;
  weight: number;
}

export interface ResolvedRoute {
  id: string;
  pattern: string;
  settings: RouteSettings;
  /** Targets grouped by priority: the first group is tried first, later groups are fallbacks. */
  groups: ResolvedTarget[][];
}

/** A model name a tenant can call, with the target a request for it tries first. */
export interface ListedModel {
  id: string;
  ownedBy: string;
  target: ResolvedTarget;
}

interface CompiledRoute extends ResolvedRoute {
  exact: boolean;
  regex?: RegExp;
  specificity: number;
}

interface Scope {
  exact: Map<string, CompiledRoute>;
  globs: CompiledRoute[];
}

const MAX_MEMO = 10_000;

/**
 * All routes in memory. Resolution order: the tenant's exact names, the tenant's globs (most specific
 * first), then global exact names and global globs. Results are memoised per (tenant, model).
 * Reloaded whole on change; a failed reload is retried with backoff and a full reload runs every minute
 * anyway (see CacheReloader).
 */
@Injectable()
export class RouteTable implements OnApplicationBootstrap, OnApplicationShutdown {
  private global: Scope = { exact: new Map(), globs: [] };
  private tenants = new Map<string, Scope>();
  private memo = new Map<string, ResolvedRoute | null>();
  private rows: RouteEntity[] = [];
  private readonly reloader = new CacheReloader('RouteTable', () => this.load());

  constructor(
    private readonly repo: RouteRepository,
    private readonly providers: ProviderCache,
    private readonly changes: ChangeFeed,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.providers.onReload(() => this.rebuild());
    await this.providers.reload();
    await this.reloader.start(this.changes);
  }

  onApplicationShutdown(): void {
    this.reloader.stop();
  }

  resolve(tenantId: string, model: string): ResolvedRoute | undefined {
    const key = tenantId + '\u0000' + model;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.lookup(this.tenants.get(tenantId), model) ?? this.lookup(this.global, model);
    if (this.memo.size >= MAX_MEMO) this.memo.clear();
    this.memo.set(key, r ?? null);
    return r;
  }

  /**
   * Concrete model names a tenant can call: exact routes plus discovered models that a glob route covers.
   * Each name is resolved as a request would be (tenant over global), and left out when that route has
   * no enabled provider left: listing it would only promise a 503.
   */
  modelsFor(tenantId: string): ListedModel[] {
    const out = new Map<string, ResolvedTarget>();
    const scopes = [this.tenants.get(tenantId), this.global].filter((s): s is Scope => !!s);
    const names = [...scopes.flatMap((s) => [...s.exact.keys()]), ...this.providers.all().flatMap((p) => p.settings.models ?? [])];
    for (const name of names) {
      if (out.has(name)) continue;
      const first = this.resolve(tenantId, name)?.groups[0]?.[0];
      if (first) out.set(name, first);
    }
    return [...out].map(([id, target]) => ({ id, ownedBy: target.provider.name, target }));
  }

  /** Coalesced (one in flight plus one queued); never rejects: a failure is retried with backoff. */
  reload(): Promise<void> {
    return this.reloader.reload();
  }

  private async load(): Promise<void> {
    this.rows = await this.repo.listAll();
    this.rebuild();
  }

  private rebuild(): void {
    const global: Scope = { exact: new Map(), globs: [] };
    const tenants = new Map<string, Scope>();
    for (const row of this.rows) {
      if (!row.enabled) continue;
      const compiled = this.compile(row);
      if (!compiled) continue;
      let scope = global;
      if (row.tenantId) {
        scope = tenants.get(row.tenantId) ?? { exact: new Map(), globs: [] };
        tenants.set(row.tenantId, scope);
      }
      if (compiled.exact) scope.exact.set(row.modelPattern, compiled);
      else scope.globs.push(compiled);
    }
    for (const s of [global, ...tenants.values()]) s.globs.sort((a, b) => b.specificity - a.specificity);
    this.global = global;
    this.tenants = tenants;
    this.memo = new Map();
  }

  private compile(row: RouteEntity): CompiledRoute | undefined {
    const byPriority = new Map<number, ResolvedTarget[]>();
    for (const t of row.targets ?? []) {
      const provider = this.providers.get(t.providerId);
      if (!provider || !provider.enabled) continue;
      const group = byPriority.get(t.priority ?? 0) ?? [];
      group.push({ provider, model: t.model ?? null, weight: Math.max(0, t.weight ?? 1) });
      byPriority.set(t.priority ?? 0, group);
    }
    const groups = [...byPriority.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
    const exact = !isGlob(row.modelPattern);
    return {
      id: row.id,
      pattern: row.modelPattern,
      settings: row.settings ?? {},
      groups,
      exact,
      regex: exact ? undefined : globToRegExp(row.modelPattern),
      specificity: patternSpecificity(row.modelPattern),
    };
  }

  private lookup(scope: Scope | undefined, model: string): ResolvedRoute | undefined {
    if (!scope) return undefined;
    const exact = scope.exact.get(model) ?? this.ollamaTagAlias(scope, model);
    if (exact) return exact;
    for (const g of scope.globs) if (g.regex!.test(model)) return g;
    return undefined;
  }

  /**
   * Ollama resolves `name` and `name:latest` to the same model, so a route for one also serves the other when
   * all its targets are Ollama: before any glob of the scope (which would send it elsewhere, e.g. `*` → openai).
   * The upstream gets the name the route lists (Ollama's own name from /api/tags); built once per name (memoised).
   */
  private ollamaTagAlias(scope: Scope, model: string): ResolvedRoute | undefined {
    const other = model.endsWith(OLLAMA_DEFAULT_TAG) ? model.slice(0, -OLLAMA_DEFAULT_TAG.length) : model.includes(':') ? undefined : model + OLLAMA_DEFAULT_TAG;
    const route = other ? scope.exact.get(other) : undefined;
    if (!route || !route.groups.length || !route.groups.every((g) => g.every((t) => t.provider.kind === 'ollama'))) return undefined;
    return { ...route, groups: route.groups.map((g) => g.map((t) => ({ ...t, model: t.model ?? route.pattern }))) };
  }
}

/** The tag Ollama assumes for a model name without one. */
const OLLAMA_DEFAULT_TAG = ':latest';

/** Orders a group's targets for one request: weighted random first pick, the rest as in-group fallbacks. */
export function orderTargets(route: ResolvedRoute, random: () => number = Math.random): ResolvedTarget[] {
  const out: ResolvedTarget[] = [];
  for (const group of route.groups) {
    if (group.length === 1) {
      out.push(group[0]);
      continue;
    }
    const pool = group.slice();
    while (pool.length) {
      const total = pool.reduce((s, t) => s + t.weight, 0);
      let x = random() * (total || pool.length);
      let idx = 0;
      for (; idx < pool.length - 1; idx++) {
        x -= total ? pool[idx].weight : 1;
        if (x < 0) break;
      }
      out.push(pool.splice(idx, 1)[0]);
    }
  }
  return out;
}
