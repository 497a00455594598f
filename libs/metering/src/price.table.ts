import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { globToRegExp, isGlob, patternSpecificity } from '@gw/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { CacheReloader, ChangeFeed, LimitSettings, PriceEntity } from '@gw/db';
import { Repository } from 'typeorm';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Cost the provider itself reported (OpenRouter); wins over the price table. */
  costUsd?: number;
}

export interface CostOptions {
  /**
   * The caller (its key or its tenant) has a budget: a model with no price is then charged the default price
   * (DEFAULT_PRICE_PER_M_INPUT / _OUTPUT) instead of 0, so unpriced models cannot bypass budgets.
   * Use `hasBudget(principal.keyLimits, principal.tenantLimits)`, the same value at admission and at the end.
   */
  budgeted?: boolean;
}

/** Whether any of the scopes (key, tenant) has a daily or monthly budget (0 included). */
export function hasBudget(...scopes: Array<LimitSettings | null | undefined>): boolean {
  return scopes.some((l) => !!l && (typeof l.dailyBudgetUsd === 'number' || typeof l.monthlyBudgetUsd === 'number'));
}

interface CompiledPrice {
  regex?: RegExp;
  exact?: string;
  specificity: number;
  input: number;
  output: number;
  cached: number;
}

const MAX_WARNED = 1000;

/**
 * Price lookups from memory. A model with no price costs 0, except to callers with a budget, who are charged
 * the default price (see `CostOptions.budgeted`); a model priced explicitly at 0 is free for everybody.
 * Reloaded whole on change; a failed reload is retried with backoff, and a full reload runs every minute.
 */
@Injectable()
export class PriceTable implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PriceTable');
  private prices: CompiledPrice[] = [];
  private memo = new Map<string, CompiledPrice | null>();
  private readonly fallback: CompiledPrice;
  private readonly warned = new Set<string>();
  private readonly reloader = new CacheReloader('PriceTable', () => this.load());

  constructor(
    @InjectRepository(PriceEntity) private readonly repo: Repository<PriceEntity>,
    private readonly changes: ChangeFeed,
    @Inject(APP_CONFIG) cfg: AppConfig,
  ) {
    const input = cfg.defaultPricePerMInput ?? 10;
    this.fallback = { specificity: 0, input, cached: input, output: cfg.defaultPricePerMOutput ?? 30 };
  }

  async onApplicationBootstrap(): Promise<void> {
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
    const rows = await this.repo.find();
    this.prices = rows
      .map((r) => ({
        exact: isGlob(r.modelPattern) ? undefined : r.modelPattern,
        regex: isGlob(r.modelPattern) ? globToRegExp(r.modelPattern) : undefined,
        specificity: patternSpecificity(r.modelPattern),
        input: r.inputPerM,
        output: r.outputPerM,
        cached: r.cachedInputPerM ?? r.inputPerM,
      }))
      .sort((a, b) => b.specificity - a.specificity);
    this.memo = new Map();
  }

  /** Whether one of the names has a price of its own (an explicit 0 included). */
  isPriced(models: Array<string | null | undefined>): boolean {
    return models.some((m) => !!m && !!this.find(m));
  }

  /** USD for a request; the first model name that has a price wins (upstream model, then the requested one). */
  cost(models: Array<string | null | undefined>, u: TokenUsage, opts: CostOptions = {}): number {
    if (typeof u.costUsd === 'number' && Number.isFinite(u.costUsd)) return u.costUsd;
    let p: CompiledPrice | undefined;
    for (const m of models) if (m && (p = this.find(m))) break;
    if (!p) {
      if (!opts.budgeted) return 0;
      p = this.fallback;
      this.warnUnpriced(models);
    }
    const cached = Math.min(u.cachedTokens, u.inputTokens);
    return ((u.inputTokens - cached) * p.input + cached * p.cached + u.outputTokens * p.output) / 1_000_000;
  }

  private warnUnpriced(models: Array<string | null | undefined>): void {
    const name = models.find((m) => !!m) ?? '(none)';
    if (this.warned.has(name) || this.warned.size >= MAX_WARNED) return;
    this.warned.add(name);
    this.logger.warn(
      `model "${name.slice(0, 200)}" has no price: callers with a budget are charged the default ` +
        `$${this.fallback.input}/$${this.fallback.output} per 1M input/output tokens (add a price, 0 for a free model)`,
    );
  }

  private find(model: string): CompiledPrice | undefined {
    const hit = this.memo.get(model);
    if (hit !== undefined) return hit ?? undefined;
    // OpenRouter ids carry a vendor prefix: `openai/gpt-4o-mini` is priced like `gpt-4o-mini`.
    const bare = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
    const found =
      this.prices.find((p) => (p.exact ? p.exact === model : p.regex!.test(model))) ??
      (bare !== model ? this.prices.find((p) => (p.exact ? p.exact === bare : p.regex!.test(bare))) : undefined);
    if (this.memo.size > 5000) this.memo.clear();
    this.memo.set(model, found ?? null);
    return found;
  }
}
