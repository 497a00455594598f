/** Limits a root admin sets on a tenant, or a tenant admin on a key. Absent = unlimited. */
export interface LimitSettings {
  requestsPerMinute?: number | null;
  tokensPerMinute?: number | null;
  concurrentRequests?: number | null;
  dailyBudgetUsd?: number | null;
  monthlyBudgetUsd?: number | null;
  /**
   * A model without any price: `refuse` (403 model_not_priced) or `fallback` (the default price). On a tenant
   * it replaces UNKNOWN_MODEL_PRICING; on a key it can only tighten (`refuse`). Absent = the gateway's setting.
   */
  unknownModelPricing?: 'fallback' | 'refuse' | null;
}
