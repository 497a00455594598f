import { OpenAIError } from '@gw/common';
import type { AppConfig } from '@gw/config';
import { GenaiPricesCatalog } from './genai-prices.catalog';
import { cardAt, priceUsage, toCards } from './price.catalog';
import { PRICE_SUPPLEMENT, PriceSupplement } from './prices.supplement';
import { PriceSources, PriceTable, PricingObserver, hasBudget } from './price.table';
import { SupplementCatalog } from './supplement.catalog';

interface Row {
  modelPattern: string;
  inputPerM: number;
  outputPerM: number;
  cachedInputPerM?: number | null;
}

const catalog = new GenaiPricesCatalog();

async function table(rows: Row[], cfg: Partial<AppConfig> = {}, sources?: PriceSources) {
  const repo = { list: async () => rows };
  const changes = { subscribe: () => () => undefined };
  const t = new PriceTable(
    repo as any,
    changes as any,
    { defaultPricePerMInput: 10, defaultPricePerMOutput: 30, unknownModelPricing: 'fallback', ...cfg } as AppConfig,
    sources,
  );
  const warn = jest.spyOn((t as any).logger, 'warn').mockImplementation(() => undefined);
  jest.spyOn((t as any).logger, 'log').mockImplementation(() => undefined);
  const seen = { priced: [] as string[], unpriced: [] as string[] };
  const observer: PricingObserver = {
    priced: (s, m) => seen.priced.push(`${s}/${m}`),
    unpriced: (m, o) => seen.unpriced.push(`${m}/${o}`),
  };
  t.observer = observer;
  await t.onApplicationBootstrap();
  t.onApplicationShutdown();
  return Object.assign(t, { warn, seen });
}

const M = 1_000_000;
/** 100k in, 100k out: below every long-context threshold, so $ = (input + output rate) / 10. */
const usage = { inputTokens: 100_000, outputTokens: 100_000, cachedTokens: 0 };

describe('PriceTable: sources and precedence', () => {
  it('admin overrides win over the supplement and the catalog, and price vendor-prefixed ids', async () => {
    const t = await table([
      { modelPattern: 'gpt-4o-mini*', inputPerM: 0.1, outputPerM: 0.2 },
      { modelPattern: 'gpt-6.1-sol', inputPerM: 1, outputPerM: 1 },
    ]);
    expect(t.cost(['gpt-4o-mini'], usage)).toBeCloseTo(0.03, 10);
    expect(t.cost(['openai/gpt-4o-mini'], usage, { provider: 'openrouter' })).toBeCloseTo(0.03, 10);
    expect(t.resolve(['gpt-6.1-sol'], 'openai')).toMatchObject({ source: 'override', entry: 'gpt-6.1-sol', match: 'exact' });
    expect(t.resolve(['gpt-4o-mini-2024-07-18'], 'openai')).toMatchObject({ source: 'override', match: 'glob' });
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai' })).toBeCloseTo(0.2, 10);
  });

  it('the supplement prices what the package lacks (gpt-6.1-*), the package the rest (gpt-5.5, gpt-6-*)', async () => {
    const t = await table([]);
    expect(t.resolve(['gpt-6.1-sol'], 'openai')).toMatchObject({ source: 'supplement', entry: 'openai:gpt-6.1-sol', match: 'exact' });
    expect(t.resolve(['gpt-6.1-terra'], 'openai')).toMatchObject({ source: 'supplement', match: 'exact' });
    expect(t.resolve(['gpt-5.5'], 'openai')).toMatchObject({ source: 'catalog', entry: 'openai:gpt-5.5', match: 'exact' });
    expect(t.resolve(['gpt-6-astra'], 'openai')).toMatchObject({ source: 'catalog', entry: 'openai:gpt-6-astra' });
    // $2 / $10 per 1M; the gpt-5.5 list price is $5 / $30.
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai' })).toBeCloseTo(1.2, 10);
    expect(t.cost(['gpt-5.5'], usage, { provider: 'openai' })).toBeCloseTo(3.5, 10);
  });

  it('a supplement entry wins over the package for the same name', async () => {
    const supplement: PriceSupplement = {
      ...PRICE_SUPPLEMENT,
      providers: { openai: [{ id: 'gpt-5.5', match: { equals: 'gpt-5.5' }, prices: { input_mtok: 1, output_mtok: 1 }, source: 'test' }] },
    };
    const t = await table([], {}, { catalog, supplement: new SupplementCatalog(supplement, catalog) });
    expect(t.resolve(['gpt-5.5'], 'openai')).toMatchObject({ source: 'supplement' });
    expect(t.cost(['gpt-5.5'], usage, { provider: 'openai' })).toBeCloseTo(0.2, 10);
  });

  it('aliases of the supplement resolve to their target and are reported', async () => {
    const t = await table([]);
    const r = t.resolve(['gpt-daybreak-blue-latest'], 'openai');
    expect(r).toMatchObject({ source: 'supplement', match: 'alias', entry: 'gpt-daybreak-blue-latest → openai:gpt-5.6-sol' });
    expect(t.cost(['gpt-daybreak-blue-latest'], usage, { provider: 'openai' })).toBe(t.cost(['gpt-5.6-sol'], usage, { provider: 'openai' }));
    expect(t.resolve(['codex-auto-review'], 'openai')).toMatchObject({ match: 'alias', entry: 'codex-auto-review → openai:gpt-6.1-sol' });
    expect(t.warn).toHaveBeenCalledWith(
      expect.stringContaining('"gpt-daybreak-blue-latest" (openai) is priced as gpt-daybreak-blue-latest → openai:gpt-5.6-sol by an alias'),
    );
  });

  it('every supplement entry with prices of its own is one the package lacks (delete it once the package has it)', () => {
    for (const [provider, models] of Object.entries(PRICE_SUPPLEMENT.providers)) {
      for (const m of models.filter((x) => x.prices)) expect({ id: m.id, hit: catalog.lookup(m.id, provider)?.entry }).toEqual({ id: m.id, hit: undefined });
    }
  });
});

describe('PriceTable: how names match', () => {
  it('listed names and dated snapshots are exact/snapshot; OpenRouter ids use its own list, then the vendor', async () => {
    const t = await table([]);
    expect(t.resolve(['gpt-5.5-codex'], 'openai')).toMatchObject({ entry: 'openai:gpt-5.5', match: 'exact' }); // the catalog lists it
    expect(t.resolve(['gpt-4o-2024-08-06'], 'openai')).toMatchObject({ entry: 'openai:gpt-4o', match: 'exact' });
    expect(t.resolve(['gpt-6-sol-2026-10-01'], 'openai')).toMatchObject({ entry: 'openai:gpt-6-sol', match: 'snapshot' });
    expect(t.resolve(['openai/gpt-4o-mini'], 'openrouter')).toMatchObject({ source: 'catalog', entry: 'openrouter:openai/gpt-4o-mini', match: 'exact' });
    expect(t.resolve(['openai/gpt-6.1-sol'], 'openrouter')).toMatchObject({ source: 'supplement', entry: 'openai:gpt-6.1-sol', match: 'vendor' });
    expect(t.warn).not.toHaveBeenCalled();
  });

  it('a prefix rule of the catalog is reported (match "prefix", one warning per model), never silent', async () => {
    const t = await table([]);
    const r = t.resolve(['gpt-5-nano-experimental'], 'openai');
    expect(r).toMatchObject({ source: 'catalog', entry: 'openai:gpt-5-nano', match: 'prefix' });
    t.cost(['gpt-5-nano-experimental'], usage, { provider: 'openai' });
    t.cost(['gpt-5-nano-experimental'], usage, { provider: 'openai' });
    const prefixWarnings = t.warn.mock.calls.filter(([m]) => String(m).includes('by a prefix rule'));
    expect(prefixWarnings).toHaveLength(1);
    expect(t.seen.priced).toEqual(['catalog/prefix', 'catalog/prefix']);
  });

  it('a name that only extends a listed one is not priced as it (gpt-5.5-codex-max is unknown, not gpt-5.5)', async () => {
    const t = await table([]);
    expect(t.isPriced(['gpt-5.5-codex-max'], 'openai')).toBe(false);
    expect(t.resolve(['gpt-5.5-codex-max'], 'openai')).toMatchObject({ source: 'fallback', model: 'gpt-5.5-codex-max' });
  });

  it('resolves once per (provider, model), then answers from memory until the overrides reload', async () => {
    const rows: Row[] = [];
    const t = await table(rows);
    const first = t.resolve(['gpt-5.5'], 'openai');
    expect(t.resolve(['gpt-5.5'], 'openai')).toBe(first);
    rows.push({ modelPattern: 'gpt-5.5', inputPerM: 1, outputPerM: 1 });
    expect(t.resolve(['gpt-5.5'], 'openai')).toBe(first);
    await (t as any).load();
    expect(t.resolve(['gpt-5.5'], 'openai')).toMatchObject({ source: 'override' });
  });
});

describe('PriceTable: tiers', () => {
  it('cached input is discounted, cache writes billed at their rate', async () => {
    const t = await table([]);
    // gpt-5.5: $5 input, $0.50 cached, $30 output.
    expect(t.cost(['gpt-5.5'], { inputTokens: 200_000, cachedTokens: 160_000, outputTokens: 20_000 }, { provider: 'openai' })).toBeCloseTo(
      0.2 + 0.08 + 0.6,
      10,
    );
    // gpt-6.1-sol: $2 input, $0.10 cached, $2.50 cache write, $10 output.
    expect(
      t.cost(['gpt-6.1-sol'], { inputTokens: 200_000, cachedTokens: 100_000, cacheWriteTokens: 20_000, outputTokens: 0 }, { provider: 'openai' }),
    ).toBeCloseTo(0.16 + 0.01 + 0.05, 10);
  });

  it('long context: past the threshold the whole request is billed at the long-context rates', async () => {
    const t = await table([]);
    const short = { inputTokens: 272_000, cachedTokens: 0, outputTokens: 10_000 };
    const long = { inputTokens: 272_001, cachedTokens: 0, outputTokens: 10_000 };
    expect(t.cost(['gpt-6.1-sol'], short, { provider: 'openai' })).toBeCloseTo((272_000 * 2 + 10_000 * 10) / M, 10);
    expect(t.cost(['gpt-6.1-sol'], long, { provider: 'openai' })).toBeCloseTo((272_001 * 4 + 10_000 * 15) / M, 10);
    // The package encodes gpt-5.5's threshold as > 271,999.
    expect(t.cost(['gpt-5.5'], short, { provider: 'openai' })).toBeCloseTo((272_000 * 10 + 10_000 * 45) / M, 10);
  });

  it('service_tier: priority and flex from the supplement, per model where it says so; standard and other kinds at 1x', async () => {
    const t = await table([]);
    const std = t.cost(['gpt-6.1-sol'], usage, { provider: 'openai' });
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai', serviceTier: 'priority' })).toBeCloseTo(2 * std, 10);
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai', serviceTier: 'flex' })).toBeCloseTo(0.5 * std, 10);
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai', serviceTier: 'default' })).toBeCloseTo(std, 10);
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai', serviceTier: 'auto' })).toBeCloseTo(std, 10);
    expect(t.cost(['gpt-5.5'], usage, { provider: 'openai', serviceTier: 'priority' })).toBeCloseTo(2.5 * 3.5, 10);
    // OpenRouter bills its own way (and reports its cost, which wins): the tier changes nothing there.
    expect(t.cost(['openai/gpt-6.1-sol'], usage, { provider: 'openrouter', serviceTier: 'priority' })).toBeCloseTo(std, 10);
    // A tier nobody priced: standard, with a warning.
    expect(t.cost(['gpt-6.1-sol'], usage, { provider: 'openai', serviceTier: 'scale' })).toBeCloseTo(std, 10);
    expect(t.warn).toHaveBeenCalledWith(expect.stringContaining('service_tier "scale" has no price'));
  });

  it('dated prices: the card in force at the time (gpt-5.6-sol was cut on 2026-08-21)', async () => {
    const t = await table([]);
    const r = t.resolve(['gpt-5.6-sol'], 'openai');
    expect(priceUsage(cardAt(r.cards, new Date('2026-08-20T00:00:00Z')), usage)).toBeCloseTo(3.5, 10);
    expect(priceUsage(cardAt(r.cards, new Date('2026-08-21T00:00:00Z')), usage)).toBeCloseTo(2.4, 10);
  });
});

describe('price cards', () => {
  it("time-of-day prices apply by UTC time, across midnight too; the last matching card wins (the package's rule)", () => {
    const cards = toCards([
      { prices: { input_mtok: 1, output_mtok: 1 } },
      { constraint: { type: 'start_date', start_date: '2026-01-01' }, prices: { input_mtok: 2, output_mtok: 2 } },
      { constraint: { type: 'time_of_date', start_time: '22:00:00Z', end_time: '02:00:00Z' }, prices: { input_mtok: 3, output_mtok: 3 } },
    ])!;
    const at = (iso: string) => priceUsage(cardAt(cards, new Date(iso)), { inputTokens: M, outputTokens: 0, cachedTokens: 0 });
    expect(at('2025-06-01T12:00:00Z')).toBe(1);
    expect(at('2026-06-01T12:00:00Z')).toBe(2);
    expect(at('2026-06-01T23:30:00Z')).toBe(3);
    expect(at('2026-06-01T01:59:59Z')).toBe(3);
    expect(at('2026-06-01T02:00:00Z')).toBe(2);
  });

  it('entries without a per-token price are not token cards (images, per-request prices)', () => {
    expect(toCards({ requests_kcount: 5 })).toBeUndefined();
    expect(toCards({ input_mtok: 0.02 })).toEqual([{ card: { input: 0.02, output: 0 } }]);
  });
});

describe('PriceTable: local models and the unknown-model policy', () => {
  it('providers of kind ollama are free unless an override prices the model', async () => {
    const t = await table([{ modelPattern: 'llama3.3:70b', inputPerM: 1, outputPerM: 1 }], { unknownModelPricing: 'refuse' });
    expect(t.resolve(['qwen2.5-coder:latest'], 'ollama')).toMatchObject({ source: 'local' });
    expect(t.cost(['qwen2.5-coder:latest'], usage, { provider: 'ollama' })).toBe(0);
    expect(() => t.assertPriced(['qwen2.5-coder:latest'], 'ollama')).not.toThrow();
    expect(t.cost(['llama3.3:70b'], usage, { provider: 'ollama' })).toBeCloseTo(0.2, 10);
    expect(t.seen.unpriced).toEqual([]);
  });

  it('fallback (the default): an unpriced model costs the default price to every caller, logged once and counted per request', async () => {
    // Changed: an unpriced model used to be free for callers without a budget.
    const t = await table([]);
    expect(t.cost(['llama3'], usage, { provider: 'openai' })).toBeCloseTo(4, 10);
    expect(t.cost(['llama3'], { inputTokens: 1000, outputTokens: 0, cachedTokens: 500 }, { provider: 'openai', estimate: true })).toBeCloseTo(0.01, 10);
    expect(t.isPriced(['llama3'])).toBe(false);
    expect(() => t.assertPriced(['llama3'], 'openai')).not.toThrow();
    expect(t.seen.unpriced).toEqual(['llama3/fallback']); // the estimate is not counted
    expect(t.seen.priced).toEqual(['fallback/none']);
    expect(t.warn.mock.calls.filter(([m]) => String(m).includes('"llama3" has no price'))).toHaveLength(1);
  });

  it("a request that used nothing (refused upstream) is not counted, so a glob route's user input never becomes a label", async () => {
    const t = await table([]);
    expect(t.cost(['vendor/made-up-4711'], { inputTokens: 0, outputTokens: 0, cachedTokens: 0 }, { provider: 'openai' })).toBe(0);
    expect(t.seen).toEqual({ priced: [], unpriced: [] });
  });

  it('refuse: no price is a 403 model_not_priced before anything is forwarded, counted and logged', async () => {
    const t = await table([], { unknownModelPricing: 'refuse' });
    let err: unknown;
    try {
      t.assertPriced(['llama3', 'team-model'], 'openai');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpenAIError);
    expect((err as OpenAIError).getStatus()).toBe(403);
    expect((err as OpenAIError).body.error).toMatchObject({ code: 'model_not_priced', type: 'permission_error' });
    expect(t.seen.unpriced).toEqual(['llama3/refused']);
    expect(() => t.assertPriced(['llama3', 'gpt-5.5'], 'openai')).not.toThrow();
  });

  it("per caller: a tenant's setting replaces UNKNOWN_MODEL_PRICING, a key's can only tighten it", async () => {
    const t = await table([]);
    expect(t.policyFor({}, {})).toBe('fallback');
    expect(t.policyFor({}, { unknownModelPricing: 'refuse' })).toBe('refuse');
    expect(t.policyFor({ unknownModelPricing: 'fallback' }, { unknownModelPricing: 'refuse' })).toBe('refuse');
    expect(t.policyFor({ unknownModelPricing: 'refuse' }, {})).toBe('refuse');
    const strict = await table([], { unknownModelPricing: 'refuse' });
    expect(strict.policyFor({}, {})).toBe('refuse');
    expect(strict.policyFor({ unknownModelPricing: 'fallback' }, null)).toBe('refuse');
    expect(strict.policyFor({}, { unknownModelPricing: 'fallback' })).toBe('fallback');
    expect(() => strict.assertPriced(['llama3'], 'openai', 'fallback')).not.toThrow();
    expect(() => t.assertPriced(['llama3'], 'openai', 'refuse')).toThrow(OpenAIError);
  });

  it('a model priced explicitly at 0 is free for everybody; DEFAULT_PRICE_* 0 makes the fallback free (explicitly)', async () => {
    const t = await table([{ modelPattern: 'llama*', inputPerM: 0, outputPerM: 0 }]);
    expect(t.cost(['llama3'], usage)).toBe(0);
    expect(t.isPriced(['llama3'])).toBe(true);
    const off = await table([], { defaultPricePerMInput: 0, defaultPricePerMOutput: 0 });
    expect(off.cost(['llama3'], usage)).toBe(0);
    expect(off.seen.unpriced).toEqual(['llama3/fallback']);
  });

  it("the provider's own reported cost still wins", async () => {
    const t = await table([]);
    expect(t.cost(['llama3'], { ...usage, costUsd: 0.42 })).toBe(0.42);
    expect(t.seen.priced).toEqual(['provider/none']);
  });

  it('hasBudget: any daily or monthly budget of the key or the tenant, 0 included; null is none', () => {
    expect(hasBudget({}, {})).toBe(false);
    expect(hasBudget({ dailyBudgetUsd: null, requestsPerMinute: 5 }, undefined)).toBe(false);
    expect(hasBudget({}, { monthlyBudgetUsd: 100 })).toBe(true);
    expect(hasBudget({ dailyBudgetUsd: 0 })).toBe(true);
  });
});

describe('SupplementCatalog', () => {
  it('refuses an entry with neither prices nor alias_of at construction', () => {
    const bad: PriceSupplement = { ...PRICE_SUPPLEMENT, providers: { openai: [{ id: 'x', match: { equals: 'x' }, source: 'test' }] } };
    expect(() => new SupplementCatalog(bad, catalog)).toThrow(/openai:x has neither/);
  });

  it('every alias resolves to a priced model', () => {
    const s = new SupplementCatalog(PRICE_SUPPLEMENT, catalog);
    for (const [provider, models] of Object.entries(PRICE_SUPPLEMENT.providers)) {
      for (const m of models) expect({ id: m.id, match: s.lookup(m.id, provider)?.match }).toEqual({ id: m.id, match: m.alias_of ? 'alias' : 'exact' });
    }
  });
});
