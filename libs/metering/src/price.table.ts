import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { Errors, globToRegExp, isGlob, patternSpecificity } from '@gw/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { CacheReloader, ChangeFeed, LimitSettings } from '@gw/db';
import { GenaiPricesCatalog } from './genai-prices.catalog';
import { PriceRepository } from './price.repository';
import { CatalogHit, ConditionalCard, MatchKind, PriceCatalog, PriceSource, cardAt, priceUsage } from './price.catalog';
import { SupplementCatalog } from './supplement.catalog';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Cache writes, part of inputTokens (providers that bill them apart). */
  cacheWriteTokens?: number;
  /** Cost the provider itself reported (OpenRouter); wins over every price. */
  costUsd?: number;
}

export interface CostOptions {
  /** Kind of the provider that serves it (openai, openrouter, ollama): picks catalog names and local pricing. */
  provider?: string;
  /** `service_tier`: the response's when it reported one (authoritative), else the request's. */
  serviceTier?: string | null;
  /** An admission estimate: priced the same, but not counted in the pricing metrics. */
  estimate?: boolean;
}

/** Whether any of the scopes (key, tenant) has a daily or monthly budget (0 included). */
export function hasBudget(...scopes: (LimitSettings | null | undefined)[]): boolean {
  return scopes.some((l) => !!l && (typeof l.dailyBudgetUsd === 'number' || typeof l.monthlyBudgetUsd === 'number'));
}

/** How one model name is priced (see docs/limits.md#pricing). */
export interface PriceResolution {
  model: string;
  source: PriceSource;
  /** The entry that priced it; null for the local and fallback prices. */
  entry: string | null;
  match: MatchKind | null;
  cards: ConditionalCard[];
  note?: string;
}

/** What the gateway's metrics hear from the table (set by `GatewayMetrics.watchPrices`). */
export interface PricingObserver {
  /** One finished request priced from `source` (`provider`: the provider's own reported cost). */
  priced(source: PriceSource, match: MatchKind | 'none'): void;
  /** A request for a model without any price: charged the fallback price, or refused at admission. */
  unpriced(model: string, outcome: 'fallback' | 'refused'): void;
}

/** The sources below the admin overrides; injectable so tests can bring their own. */
export const PRICE_SOURCES = Symbol('PRICE_SOURCES');
export interface PriceSources {
  supplement: SupplementCatalog;
  catalog: PriceCatalog;
}

interface CompiledOverride {
  regex?: RegExp;
  exact?: string;
  pattern: string;
  specificity: number;
  cards: ConditionalCard[];
}

const MAX_MEMO = 5000;
const MAX_WARNED = 1000;
/** Distinct model labels of gateway_unpriced_requests_total before the rest count as `other`. */
const MAX_MODEL_LABELS = 100;

/**
 * Prices from memory, resolved once per (provider kind, model name) and then a map hit. Precedence:
 *   1. admin overrides (`/admin/prices`, the prices table; exact name or glob, most specific first);
 *   2. providers of kind `ollama`: local models are free (0) unless an override prices them;
 *   3. the repo's supplement (prices.supplement.ts): models the package lacks, aliases, service tiers;
 *   4. the package catalog (@pydantic/genai-prices, pinned; its shipped snapshot, never fetched);
 *   5. the unknown-model policy (UNKNOWN_MODEL_PRICING): `fallback` charges DEFAULT_PRICE_PER_M_* to every
 *      caller, `refuse` refuses at admission; either way it is logged once per model and counted.
 * A prefix rule of the catalog (or an alias of the supplement) prices a model as another one: that is
 * logged once per model and visible on the resolution (`match`), never silent.
 * Overrides reload whole on admin changes (CacheReloader: coalesced, retried, full reload every minute).
 */
@Injectable()
export class PriceTable implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PriceTable');
  private overrides: CompiledOverride[] = [];
  private memo = new Map<string, PriceResolution | null>();
  private readonly fallback: PriceResolution;
  private readonly warned = new Set<string>();
  private readonly modelLabels = new Set<string>();
  private readonly reloader = new CacheReloader('PriceTable', () => this.load());
  private readonly sources: PriceSources;
  private readonly policy: 'fallback' | 'refuse';
  observer?: PricingObserver;

  constructor(
    private readonly prices: PriceRepository,
    private readonly changes: ChangeFeed,
    @Inject(APP_CONFIG) cfg: AppConfig,
    @Optional() @Inject(PRICE_SOURCES) sources?: PriceSources,
  ) {
    const input = cfg.defaultPricePerMInput ?? 10;
    const output = cfg.defaultPricePerMOutput ?? 30;
    this.fallback = { model: '', source: 'fallback', entry: null, match: null, cards: [{ card: { input, cachedInput: input, output } }] };
    this.policy = cfg.unknownModelPricing ?? 'fallback';
    if (sources) this.sources = sources;
    else {
      const catalog = new GenaiPricesCatalog();
      this.sources = { catalog, supplement: new SupplementCatalog(undefined, catalog) };
    }
  }

  async onApplicationBootstrap(): Promise<void> {
    this.logger.log(`prices: admin overrides > ${this.sources.supplement.label} > ${this.sources.catalog.label}; unknown models: ${this.policy}`);
    await this.reloader.start(this.changes);
  }

  onApplicationShutdown(): void {
    this.reloader.stop();
  }

  /** Coalesced (one in flight plus one queued); never rejects: a failure is retried with backoff. */
  reload(): Promise<void> {
    return this.reloader.reload();
  }

  private async load(): Promise<void> {
    const rows = await this.prices.list();
    this.overrides = rows
      .map((r) => ({
        exact: isGlob(r.modelPattern) ? undefined : r.modelPattern,
        regex: isGlob(r.modelPattern) ? globToRegExp(r.modelPattern) : undefined,
        pattern: r.modelPattern,
        specificity: patternSpecificity(r.modelPattern),
        cards: [{ card: { input: r.inputPerM, output: r.outputPerM, cachedInput: r.cachedInputPerM ?? r.inputPerM } }],
      }))
      .sort((a, b) => b.specificity - a.specificity);
    this.memo = new Map();
  }

  /** Whether one of the names has a price of its own (an override, local, supplement or catalog; 0 included). */
  isPriced(models: (string | null | undefined)[], provider?: string): boolean {
    return models.some((m) => !!m && !!this.find(m, provider));
  }

  /** How the first name that has a price is priced, else the fallback (named after the first name). */
  resolve(models: (string | null | undefined)[], provider?: string): PriceResolution {
    for (const m of models) {
      const r = m ? this.find(m, provider) : null;
      if (r) return r;
    }
    return { ...this.fallback, model: models.find((m) => !!m) ?? '(none)' };
  }

  /**
   * The unknown-model policy for a caller: the tenant's setting replaces UNKNOWN_MODEL_PRICING, and a key's
   * `refuse` tightens it (a key cannot loosen what its tenant or the gateway refuses).
   */
  policyFor(keyLimits?: LimitSettings | null, tenantLimits?: LimitSettings | null): 'fallback' | 'refuse' {
    if (keyLimits?.unknownModelPricing === 'refuse') return 'refuse';
    return tenantLimits?.unknownModelPricing ?? this.policy;
  }

  /**
   * Under the `refuse` policy (UNKNOWN_MODEL_PRICING, or the caller's, see `policyFor`), throws 403
   * `model_not_priced` when none of the names has a price (call before forwarding anything).
   */
  assertPriced(models: (string | null | undefined)[], provider?: string, policy: 'fallback' | 'refuse' = this.policy): void {
    if (policy !== 'refuse') return;
    const r = this.resolve(models, provider);
    if (r.source !== 'fallback') return;
    this.warnOnce(`refuse:${r.model}`, `model "${r.model.slice(0, 200)}" has no price: refused (unknown-model policy refuse; add a price in /admin/prices)`);
    this.observer?.unpriced(this.modelLabel(r.model), 'refused');
    throw Errors.forbidden(
      `Model \`${r.model}\` has no price on this gateway, and this gateway refuses unpriced models. Ask your administrator to add a price for it.`,
      'model_not_priced',
    );
  }

  /** USD for a request; the first model name that has a price wins (upstream model, then the requested one). */
  cost(models: (string | null | undefined)[], u: TokenUsage, opts: CostOptions = {}): number {
    if (typeof u.costUsd === 'number' && Number.isFinite(u.costUsd)) {
      if (!opts.estimate) this.observer?.priced('provider', 'none');
      return u.costUsd;
    }
    const r = this.resolve(models, opts.provider);
    // Only what was used is counted: a request refused upstream (no tokens) was not priced at all, and its
    // model name (a glob route's user input) must not become a metric label.
    const used = u.inputTokens > 0 || u.outputTokens > 0;
    if (!opts.estimate && used) {
      if (r.source === 'fallback') {
        this.warnOnce(
          `fallback:${r.model}`,
          `model "${r.model.slice(0, 200)}" has no price: charged the default $${this.fallbackRate('input')}/$${this.fallbackRate('output')} per 1M ` +
            `input/output tokens (unknown-model policy fallback; add a price in /admin/prices, 0 for a free model)`,
        );
        this.observer?.unpriced(this.modelLabel(r.model), 'fallback');
      }
      this.observer?.priced(r.source, r.match ?? 'none');
    }
    const multiplier = r.source === 'local' || r.source === 'fallback' ? 1 : this.tierMultiplier(r.model, opts.serviceTier, opts.provider);
    return priceUsage(cardAt(r.cards, new Date()), u, multiplier);
  }

  /** The service-tier multiplier (priority, flex) from the supplement; an unknown tier is charged standard, with a warning. */
  tierMultiplier(model: string, tier: string | null | undefined, provider?: string): number {
    if (!tier) return 1;
    const t = this.sources.supplement.serviceTier(model, tier, provider);
    if (t) return t.multiplier;
    this.warnOnce(`tier:${tier}`, `service_tier "${tier.slice(0, 50)}" has no price in the supplement: charged at the standard tier`);
    return 1;
  }

  private fallbackRate(k: 'input' | 'output'): number {
    return this.fallback.cards[0].card[k] as number;
  }

  private find(model: string, provider?: string): PriceResolution | null {
    const key = provider ? `${provider}\u0000${model}` : model;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    const found = this.lookup(model, provider);
    if (this.memo.size >= MAX_MEMO) this.memo.clear();
    this.memo.set(key, found);
    if (found && (found.match === 'prefix' || found.match === 'alias')) {
      this.warnOnce(
        `match:${key}`,
        `model "${model.slice(0, 200)}"${provider ? ` (${provider})` : ''} is priced as ${found.entry} by ${found.match === 'prefix' ? 'a prefix rule of the catalog' : 'an alias of the supplement'}` +
          `${found.note ? ` (${found.note})` : ''}; add a price in /admin/prices if that is wrong`,
      );
    }
    return found;
  }

  private lookup(model: string, provider?: string): PriceResolution | null {
    const o = this.override(model);
    if (o) return o;
    // Local models cost nothing to run here: free unless an admin override prices them (step 1).
    if (provider === 'ollama') return { model, source: 'local', entry: null, match: null, cards: [{ card: { input: 0, output: 0 } }] };
    const hit = this.sources.supplement.lookup(model, provider) ?? this.sources.catalog.lookup(model, provider);
    return hit ? fromHit(model, hit) : null;
  }

  private override(model: string): PriceResolution | null {
    const test = (name: string) => this.overrides.find((p) => (p.exact ? p.exact === name : p.regex!.test(name)));
    let p = test(model);
    let match: MatchKind = 'exact';
    // OpenRouter ids carry a vendor prefix: an override for `gpt-4o-mini` also prices `openai/gpt-4o-mini`.
    if (!p && model.includes('/')) {
      p = test(model.slice(model.lastIndexOf('/') + 1));
      match = 'vendor';
    }
    if (!p) return null;
    return { model, source: 'override', entry: p.pattern, match: p.exact ? match : 'glob', cards: p.cards };
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key) || this.warned.size >= MAX_WARNED) return;
    this.warned.add(key);
    this.logger.warn(message);
  }

  private modelLabel(model: string): string {
    if (this.modelLabels.has(model)) return model;
    if (this.modelLabels.size >= MAX_MODEL_LABELS) return 'other';
    this.modelLabels.add(model);
    return model;
  }
}

function fromHit(model: string, h: CatalogHit): PriceResolution {
  return { model, source: h.source, entry: h.entry, match: h.match, cards: h.cards, note: h.note };
}
