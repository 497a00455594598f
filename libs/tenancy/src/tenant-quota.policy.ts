import { LimitSettings } from '@gw/db';

export interface QuotaExcess {
  field: string;
  key: number;
  tenant: number;
}

/**
 * The first key limit set above the tenant's own limit for the same field, if any. Generic over the
 * fields so that limits added later are covered too. A key without a value for a field the tenant
 * limits is fine: the tenant's limit still applies to it.
 */
export function keyLimitOverQuota(key: LimitSettings, tenant: LimitSettings): QuotaExcess | undefined {
  const k = key as Record<string, unknown>;
  for (const [field, cap] of Object.entries(tenant as Record<string, unknown>)) {
    if (typeof cap !== 'number') continue;
    const v = k[field];
    if (typeof v === 'number' && v > cap) return { field, key: v, tenant: cap };
  }
  return undefined;
}
