import { BudgetCounter } from './limit.types';

/** Which budget refused (index in `BUDGETS` order, -1 = none) and, if none did, the cost to reserve. */
export interface BudgetDecision {
  refused: number;
  grant: number;
}

/**
 * The budget rule, shared by both stores (the Redis script mirrors it line by line). Per budget with limit
 * L, settled spend S and reservations in flight R, for a request whose worst case costs `cost` and whose
 * useful minimum (the output clamped to BUDGET_MIN_OUTPUT_TOKENS) costs `minCost`:
 *   1. S >= L, or S + minCost > L: final (insufficient_quota); settles only ever add to S.
 *   2. S + R + cost > L with R > 0: in-flight reservations are in the way and may come back (retryable 429).
 *   3. otherwise admitted, reserving min(cost, L - S - R) over all budgets: less than `cost` only where
 *      nothing is in flight, and never less than `minCost` (rule 1); the caller clamps the output to it.
 */
export function decideBudgets(limits: readonly (number | null)[], counters: readonly BudgetCounter[], cost: number, minCost: number): BudgetDecision {
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i];
    if (l !== null && (counters[i].spentUnits >= l || counters[i].spentUnits + minCost > l)) return { refused: i, grant: 0 };
  }
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i];
    const c = counters[i];
    if (l !== null && c.reservedUnits > 0 && c.spentUnits + c.reservedUnits + cost > l) return { refused: i, grant: 0 };
  }
  let grant = cost;
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i];
    if (l !== null) grant = Math.min(grant, l - counters[i].spentUnits - counters[i].reservedUnits);
  }
  return { refused: -1, grant: Math.max(0, grant) };
}
