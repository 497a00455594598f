import type { MatchLogic, RawPrices } from './price.catalog';

/**
 * Prices the package catalog (@pydantic/genai-prices) lacks, kept in the repo: models newer than the
 * package's snapshot, aliases it does not know, and the service tiers (priority, flex) it does not model
 * (pydantic/genai-prices#115). Same data model as the package (USD per 1M tokens, `*_mtok` keys, tiers that
 * reprice the whole request above `start` input tokens), so an entry can be sent upstream as is; when the
 * package gains a model, delete it here (the supplement wins over the package, so a stale entry would too).
 * Every entry names its source; assumptions say so in `note`. It is TypeScript rather than JSON only so
 * that every build (swc without --copy-files) carries it.
 */
export interface SupplementModel {
  id: string;
  match: MatchLogic;
  /** Own prices, or `alias_of`: priced exactly as that model (resolved in the supplement, then the package). */
  prices?: RawPrices;
  alias_of?: string;
  source: string;
  note?: string;
}

export interface ServiceTierRule {
  /** Multiplier on every rate (input, cached input, cache writes, output) of the standard tier. */
  multiplier: number;
  source: string;
  /** Model-specific multipliers, first match wins; else `multiplier`. */
  models?: { match: MatchLogic; multiplier: number; source: string }[];
}

export interface PriceSupplement {
  /** Date of the last review of this file against its sources. */
  version: string;
  /** Catalog providers (`openai`, `openrouter`) and their extra models. */
  providers: Record<string, SupplementModel[]>;
  /** `service_tier` values priced differently from the standard tier (`default`, `auto`: multiplier 1). */
  service_tiers: Record<string, ServiceTierRule>;
  /** Gateway provider kinds whose upstream bills by service tier (elsewhere the tier does not change the price). */
  service_tier_kinds: string[];
}

const LONG_CONTEXT = 'Prompts over 272K input tokens are billed whole at 2x input and cache rates and 1.5x output.';

export const PRICE_SUPPLEMENT: PriceSupplement = {
  version: '2026-11-30',
  providers: {
    openai: [
      {
        id: 'gpt-6.1-sol',
        match: { or: [{ equals: 'gpt-6.1-sol' }, { equals: 'gpt-6-1-sol' }, { regex: '^gpt-6[.-]1-sol-\\d{4}-\\d{2}-\\d{2}$' }] },
        prices: {
          input_mtok: { base: 2, tiers: [{ start: 272000, price: 4 }] },
          cache_read_mtok: { base: 0.1, tiers: [{ start: 272000, price: 0.2 }] },
          cache_write_mtok: { base: 2.5, tiers: [{ start: 272000, price: 5 }] },
          output_mtok: { base: 10, tiers: [{ start: 272000, price: 15 }] },
        },
        source: 'https://developers.openai.com/api/docs/models/gpt-6.1-sol and https://developers.openai.com/api/docs/pricing (standard tier)',
        note: LONG_CONTEXT,
      },
      {
        id: 'gpt-6.1-terra',
        match: { or: [{ equals: 'gpt-6.1-terra' }, { equals: 'gpt-6-1-terra' }, { regex: '^gpt-6[.-]1-terra-\\d{4}-\\d{2}-\\d{2}$' }] },
        prices: {
          input_mtok: { base: 1, tiers: [{ start: 272000, price: 2 }] },
          cache_read_mtok: { base: 0.05, tiers: [{ start: 272000, price: 0.1 }] },
          cache_write_mtok: { base: 1.25, tiers: [{ start: 272000, price: 2.5 }] },
          output_mtok: { base: 5, tiers: [{ start: 272000, price: 7.5 }] },
        },
        source: 'https://developers.openai.com/api/docs/models/gpt-6.1-terra and https://developers.openai.com/api/docs/pricing (standard tier)',
        note: LONG_CONTEXT,
      },
      {
        id: 'gpt-daybreak-blue-latest',
        match: { equals: 'gpt-daybreak-blue-latest' },
        alias_of: 'gpt-5.6-sol',
        source: 'https://developers.openai.com/api/docs/models/gpt-daybreak-blue-latest ("Default snapshot: gpt-5.6-sol")',
        note: 'An alias OpenAI bills as its snapshot; re-check when the alias moves.',
      },
      {
        id: 'gpt-daybreak-red-latest',
        match: { equals: 'gpt-daybreak-red-latest' },
        alias_of: 'gpt-5.6-sol',
        source: 'https://developers.openai.com/api/docs/guides/daybreak',
        note: 'Assumption: no published rate; priced as its Blue sibling (gpt-5.6-sol). Override it in /admin/prices if your invoice differs.',
      },
      {
        id: 'codex-auto-review',
        match: { equals: 'codex-auto-review' },
        alias_of: 'gpt-6.1-sol',
        source: 'https://developers.openai.com/codex/auto-review',
        note: "Assumption: Codex's approval reviewer has no published API rate; priced as the first model of Codex 0.169's picker (gpt-6.1-sol, priority 1).",
      },
    ],
  },
  service_tiers: {
    priority: {
      multiplier: 2,
      source: 'https://openai.com/api-priority-processing/ (GPT-5, 5.1, 5.2, 5.4 at 2x standard) and the GPT-6.1 model pages ("Fast mode costs 2x")',
      models: [
        {
          match: { starts_with: 'gpt-5.5' },
          multiplier: 2.5,
          source: 'https://developers.openai.com/api/docs/pricing, priority tab: gpt-5.5 $12.50 / $75 against $5 / $30',
        },
        { match: { starts_with: 'gpt-5-mini' }, multiplier: 1.8, source: 'https://openai.com/api-priority-processing/: $0.45 / $3.60 against $0.25 / $2' },
        { match: { starts_with: 'gpt-4.1' }, multiplier: 1.75, source: 'https://openai.com/api-priority-processing/: gpt-4.1 family at 1.75x' },
        { match: { starts_with: 'gpt-4o-mini' }, multiplier: 1.6667, source: 'https://openai.com/api-priority-processing/: $0.25 / $1 against $0.15 / $0.60' },
        { match: { starts_with: 'gpt-4o' }, multiplier: 1.7, source: 'https://openai.com/api-priority-processing/: $4.25 / $17 against $2.50 / $10' },
      ],
    },
    flex: {
      multiplier: 0.5,
      source:
        'https://developers.openai.com/api/docs/guides/flex-processing (Batch API rates, 50% of standard) and the GPT-6.1 model pages ("Batch and Flex: 50% off")',
    },
  },
  service_tier_kinds: ['openai'],
};
