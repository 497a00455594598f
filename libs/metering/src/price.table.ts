import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { globToRegExp, isGlob, patternSpecificity } from '@gw/common';
import { ChangeFeed, PriceEntity } from '@gw/db';
import { Repository } from 'typeorm';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Cost the provider itself reported (OpenRouter); wins over the price table. */
  costUsd?: number;
}

interface CompiledPrice {
  regex?: RegExp;
  exact?: string;
  specificity: number;
  input: number;
  output: number;
  cached: number;
}

/** Price lookups from memory; unknown models cost 0 (e.g. a local Ollama model nobody priced). */
@Injectable()
export class PriceTable implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PriceTable');
  private prices: CompiledPrice[] = [];
  private memo = new Map<string, CompiledPrice | null>();
  private unsubscribe?: () => void;

  constructor(
    @InjectRepository(PriceEntity) private readonly repo: Repository<PriceEntity>,
    private readonly changes: ChangeFeed,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.unsubscribe = this.changes.subscribe(() => void this.reload());
    await this.reload();
  }

  onApplicationShutdown(): void {
    this.unsubscribe?.();
  }

  async reload(): Promise<void> {
    try {
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
    } catch (e) {
      this.logger.error(`reload failed: ${(e as Error).message}`);
    }
  }

  /** USD for a request; the first model name that has a price wins (upstream model, then the requested one). */
  cost(models: Array<string | null | undefined>, u: TokenUsage): number {
    if (typeof u.costUsd === 'number' && Number.isFinite(u.costUsd)) return u.costUsd;
    for (const m of models) {
      if (!m) continue;
      const p = this.find(m);
      if (p) {
        const cached = Math.min(u.cachedTokens, u.inputTokens);
        return ((u.inputTokens - cached) * p.input + cached * p.cached + u.outputTokens * p.output) / 1_000_000;
      }
    }
    return 0;
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
