/** A UTC calendar period: budgets are per UTC day and per UTC calendar month. */
export interface Period {
  id: string;
  start: number;
  end: number;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function utcDay(ms: number): Period {
  const d = new Date(ms);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return { id: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`, start, end: start + 86_400_000 };
}

export function utcMonth(ms: number): Period {
  const d = new Date(ms);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return { id: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`, start, end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

/** Counters outlive their period by a day, so a request that straddles midnight can still settle. */
export function periodTtlMs(p: Period, now: number): number {
  return Math.max(0, p.end - now) + 86_400_000;
}
