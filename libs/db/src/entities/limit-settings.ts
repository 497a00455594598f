/** Limits a root admin sets on a tenant, or a tenant admin on a key. Absent = unlimited. */
export interface LimitSettings {
  requestsPerMinute?: number | null;
  tokensPerMinute?: number | null;
  concurrentRequests?: number | null;
  dailyBudgetUsd?: number | null;
  monthlyBudgetUsd?: number | null;
}
