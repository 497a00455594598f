import { keyLimitOverQuota } from './tenant-quota.policy';

describe('keyLimitOverQuota', () => {
  it('accepts limits at or under the tenant limits, and fields the tenant leaves unlimited', () => {
    expect(keyLimitOverQuota({ requestsPerMinute: 600, dailyBudgetUsd: 1 }, { requestsPerMinute: 600, dailyBudgetUsd: 5 })).toBeUndefined();
    expect(keyLimitOverQuota({ tokensPerMinute: 1e9 }, { requestsPerMinute: 10 })).toBeUndefined();
    expect(keyLimitOverQuota({ requestsPerMinute: null }, { requestsPerMinute: 10 })).toBeUndefined();
    expect(keyLimitOverQuota({}, { monthlyBudgetUsd: 10 })).toBeUndefined();
  });

  it('names the first field above the tenant limit', () => {
    expect(keyLimitOverQuota({ requestsPerMinute: 5, monthlyBudgetUsd: 10.5 }, { requestsPerMinute: 5, monthlyBudgetUsd: 10 })).toEqual({
      field: 'monthlyBudgetUsd',
      key: 10.5,
      tenant: 10,
    });
  });

  it('treats a tenant limit of null as unlimited', () => {
    expect(keyLimitOverQuota({ concurrentRequests: 50 }, { concurrentRequests: null })).toBeUndefined();
  });
});
