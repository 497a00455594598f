import type { AppConfig } from '@gw/config';
import { PriceTable, hasBudget } from './price.table';

async function table(rows: Array<{ modelPattern: string; inputPerM: number; outputPerM: number; cachedInputPerM?: number | null }>, cfg: Partial<AppConfig> = {}) {
  const repo = { find: async () => rows };
  const changes = { subscribe: () => () => undefined };
  const t = new PriceTable(repo as any, changes as any, { defaultPricePerMInput: 10, defaultPricePerMOutput: 30, ...cfg } as AppConfig);
  jest.spyOn((t as any).logger, 'warn').mockImplementation(() => undefined);
  await t.onApplicationBootstrap();
  t.onApplicationShutdown();
  return t;
}

const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000, cachedTokens: 0 };

describe('PriceTable', () => {
  it('prices known models from the table, whoever asks', async () => {
    const t = await table([{ modelPattern: 'gpt-4o-mini*', inputPerM: 0.15, outputPerM: 0.6 }]);
    expect(t.cost(['gpt-4o-mini'], usage)).toBeCloseTo(0.75, 10);
    expect(t.cost(['openai/gpt-4o-mini'], usage, { budgeted: true })).toBeCloseTo(0.75, 10);
  });

  it('an unpriced model is free without a budget, and costs the default price to a budgeted caller', async () => {
    const t = await table([]);
    expect(t.cost(['llama3'], usage)).toBe(0);
    expect(t.cost(['llama3'], usage, { budgeted: true })).toBe(40);
    expect(t.cost(['llama3'], { inputTokens: 1000, outputTokens: 0, cachedTokens: 500 }, { budgeted: true })).toBeCloseTo(0.01, 10);
    expect(t.isPriced(['llama3'])).toBe(false);
  });

  it('a model priced explicitly at 0 stays free for budgeted callers; DEFAULT_PRICE_* 0 turns the fallback off', async () => {
    const t = await table([{ modelPattern: 'llama*', inputPerM: 0, outputPerM: 0 }]);
    expect(t.cost(['llama3'], usage, { budgeted: true })).toBe(0);
    expect(t.isPriced(['llama3'])).toBe(true);
    const off = await table([], { defaultPricePerMInput: 0, defaultPricePerMOutput: 0 });
    expect(off.cost(['llama3'], usage, { budgeted: true })).toBe(0);
  });

  it("the provider's own reported cost still wins", async () => {
    const t = await table([]);
    expect(t.cost(['llama3'], { ...usage, costUsd: 0.42 }, { budgeted: true })).toBe(0.42);
  });

  it('hasBudget: any daily or monthly budget of the key or the tenant, 0 included; null is none', () => {
    expect(hasBudget({}, {})).toBe(false);
    expect(hasBudget({ dailyBudgetUsd: null, requestsPerMinute: 5 }, undefined)).toBe(false);
    expect(hasBudget({}, { monthlyBudgetUsd: 100 })).toBe(true);
    expect(hasBudget({ dailyBudgetUsd: 0 })).toBe(true);
  });
});
