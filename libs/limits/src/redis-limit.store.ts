import Redis from 'ioredis';
import { RedisScript } from '@gw/common';
import {
  AdmitPlan,
  AdmitResult,
  BUDGETS,
  CounterSnapshot,
  LimitStore,
  PeriodSpend,
  Refusal,
  Scope,
  Ticket,
  WINDOW_MS,
  budgetMask,
  ticketOf,
} from './limit.types';
import { ADMIT_LUA, FINISH_LUA, RENEW_LUA, SEED_LUA } from './redis-limit.scripts';

const ADMIT = new RedisScript(ADMIT_LUA);
const FINISH = new RedisScript(FINISH_LUA);
const SEED = new RedisScript(SEED_LUA);
const RENEW = new RedisScript(RENEW_LUA);

const SCOPES: readonly Scope[] = ['key', 'tenant'];
type Reason = 'requests' | 'tokens' | 'concurrency' | 'budget';

/** Round trips per script, so tests can prove the admit path costs exactly one. */
export interface RedisStoreStats {
  admit: number;
  finish: number;
  seed: number;
  read: number;
  renew: number;
}

/**
 * Counters in Redis (REDIS_URL), shared by every replica. Admission is one EVALSHA of a script that checks
 * and reserves requests, tokens, concurrency and money at once. The throttler's own Redis storage runs one
 * script per counter and cannot reserve tokens or money in the same atomic step, so requests per minute are
 * counted inside this script, with the same sliding-log rule as the throttler's in-memory storage.
 */
export class RedisLimitStore implements LimitStore {
  readonly kind = 'redis' as const;
  readonly stats: RedisStoreStats = { admit: 0, finish: 0, seed: 0, read: 0, renew: 0 };
  private readonly redis: Redis;
  private closed = false;

  constructor(url: string) {
    // Fail fast when Redis is away rather than queueing requests behind reconnect attempts.
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 2000, connectionName: 'gw-limits' });
    this.redis.on('error', () => undefined); // surfaced per command; avoid unhandled 'error' events
  }

  async admit(plan: AdmitPlan): Promise<AdmitResult> {
    const p = prefix(plan.tenantId);
    const k = `${p}k:${plan.keyId}:`;
    const mask = budgetMask(plan);
    const member = [plan.requestId, plan.costUnits, mask, plan.keyId, plan.day, plan.month].join('|');
    const keys = [
      `${k}rpm`,
      `${p}rpm`,
      `${k}tpm`,
      `${p}tpm`,
      `${k}slots`,
      `${p}slots`,
      ...budgetKeys(plan.tenantId, plan.keyId, plan.day, plan.month),
      `${p}leases`,
      `${p}seeded:d:${plan.day}`,
      `${p}seeded:m:${plan.month}`,
    ];
    const lim = (n: number | null) => n ?? -1;
    const args = [
      plan.requestId,
      plan.tokens,
      plan.costUnits,
      plan.leaseMs,
      lim(plan.key.rpm),
      lim(plan.tenant.rpm),
      lim(plan.key.tpm),
      lim(plan.tenant.tpm),
      lim(plan.key.concurrency),
      lim(plan.tenant.concurrency),
      lim(plan.key.dailyUnits),
      lim(plan.key.monthlyUnits),
      lim(plan.tenant.dailyUnits),
      lim(plan.tenant.monthlyUnits),
      WINDOW_MS,
      plan.dayTtlMs,
      plan.monthTtlMs,
      p,
      member,
      mask,
      plan.minCostUnits,
    ];
    this.stats.admit++;
    const r = (await ADMIT.run(this.redis, keys, args)) as (number | string)[];
    if (r[0] === 2) return { status: 'seed', rpm: {}, tpm: {} };
    const n = (i: number) => Number(r[i]);
    const rpm: AdmitResult['rpm'] = {};
    const tpm: AdmitResult['tpm'] = {};
    SCOPES.forEach((scope, s) => {
      if (plan[scope].rpm !== null) rpm[scope] = { used: n(5 + 2 * s), resetMs: n(6 + 2 * s) };
      if (plan[scope].tpm !== null) tpm[scope] = { used: n(9 + 2 * s), resetMs: n(10 + 2 * s) };
    });
    const budgets = BUDGETS.map((_, i) => (n(15 + 2 * i) < 0 ? null : { spentUnits: n(15 + 2 * i), reservedUnits: n(16 + 2 * i) }));
    if (r[0] === 0) return { status: 'refused', refusal: refusalOf(String(r[1]), n(2), n(3), n(4)), rpm, tpm, budgets };
    const ticket = ticketOf(plan, {
      tokens: plan.tokens,
      costUnits: n(23),
      mask,
      tpmStart: { key: plan.key.tpm !== null ? n(13) : 0, tenant: plan.tenant.tpm !== null ? n(14) : 0 },
      slot: { key: plan.key.concurrency !== null, tenant: plan.tenant.concurrency !== null },
    });
    return { status: 'ok', ticket, rpm, tpm, budgets };
  }

  async finish(t: Ticket, actualTokens: number, actualUnits: number): Promise<void> {
    const held = t.mask !== '0000' || t.slot.key || t.slot.tenant || t.tpmStart.key || t.tpmStart.tenant;
    if (!held && actualUnits <= 0) return;
    const p = prefix(t.tenantId);
    const k = `${p}k:${t.keyId}:`;
    const member = t.mask !== '0000' ? leaseMember(t) : '';
    const keys = [`${k}tpm`, `${p}tpm`, `${k}slots`, `${p}slots`, ...budgetKeys(t.tenantId, t.keyId, t.day, t.month), `${p}leases`];
    const args = [t.requestId, member, t.mask, t.tokens, actualTokens, t.costUnits, actualUnits, t.tpmStart.key, t.tpmStart.tenant, t.dayTtlMs, t.monthTtlMs];
    this.stats.finish++;
    await FINISH.run(this.redis, keys, args);
  }

  async seed(tenantId: string, day: string, month: string, dayTtlMs: number, monthTtlMs: number, spend: PeriodSpend): Promise<void> {
    const p = prefix(tenantId);
    const keys = [`${p}seeded:d:${day}`, `${p}seeded:m:${month}`, `${p}d:${day}`, `${p}m:${month}`];
    const args: (string | number)[] = [dayTtlMs, monthTtlMs, spend.tenant.day, spend.tenant.month];
    for (const [keyId, s] of spend.keys) {
      keys.push(`${p}k:${keyId}:d:${day}`, `${p}k:${keyId}:m:${month}`);
      args.push(s.day, s.month);
    }
    this.stats.seed++;
    await SEED.run(this.redis, keys, args);
  }

  async read(tenantId: string, keyId: string, day: string, month: string): Promise<CounterSnapshot> {
    this.stats.read++;
    const pipe = this.redis.pipeline();
    for (const key of budgetKeys(tenantId, keyId, day, month)) pipe.hmget(key, 'spent', 'reserved');
    const rows = ((await pipe.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      const [spent, reserved] = v as (string | null)[];
      return { spentUnits: Number(spent ?? 0), reservedUnits: Number(reserved ?? 0) };
    });
    return { key: { daily: rows[0], monthly: rows[1] }, tenant: { daily: rows[2], monthly: rows[3] } };
  }

  /**
   * One pipelined round trip for all of a process's tickets: one script per tenant (a script may only touch
   * one cluster slot, and each tenant has its own hash tag).
   */
  async renew(tickets: Ticket[], leaseMs: number): Promise<void> {
    const byTenant = new Map<string, Ticket[]>();
    for (const t of tickets) {
      if (t.mask === '0000' && !t.slot.key && !t.slot.tenant) continue;
      const list = byTenant.get(t.tenantId);
      if (list) list.push(t);
      else byTenant.set(t.tenantId, [t]);
    }
    if (!byTenant.size) return;
    const pipe = this.redis.pipeline();
    for (const [tenantId, list] of byTenant) {
      const p = prefix(tenantId);
      const keys = [`${p}slots`, `${p}leases`];
      const args: (string | number)[] = [leaseMs, WINDOW_MS];
      for (const t of list) {
        let ki = 0;
        if (t.slot.key) {
          const k = `${p}k:${t.keyId}:slots`;
          ki = keys.indexOf(k) + 1 || keys.push(k);
        }
        args.push(t.requestId, t.mask !== '0000' ? leaseMember(t) : '', ki, t.slot.tenant ? '1' : '0');
      }
      pipe.evalsha(RENEW.sha, keys.length, ...keys, ...args);
    }
    this.stats.renew++;
    const results = (await pipe.exec()) ?? [];
    if (results.some(([err]) => err && String(err.message).includes('NOSCRIPT'))) {
      // A fresh (or flushed) Redis: load the script and go again, once.
      await this.redis.script('LOAD', RENEW.src);
      return this.renew(tickets, leaseMs);
    }
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** A budget reservation's entry in the tenant's `leases` zset: everything needed to give it back. */
function leaseMember(t: Pick<Ticket, 'requestId' | 'costUnits' | 'mask' | 'keyId' | 'day' | 'month'>): string {
  return [t.requestId, t.costUnits, t.mask, t.keyId, t.day, t.month].join('|');
}

/** All of a tenant's keys share one hash tag, so a script only touches one cluster slot. */
function prefix(tenantId: string): string {
  return `gw:{${tenantId}}:`;
}

/** In `BUDGETS` order: key daily, key monthly, tenant daily, tenant monthly. */
function budgetKeys(tenantId: string, keyId: string, day: string, month: string): string[] {
  const p = prefix(tenantId);
  return [`${p}k:${keyId}:d:${day}`, `${p}k:${keyId}:m:${month}`, `${p}d:${day}`, `${p}m:${month}`];
}

function refusalOf(reason: string, which: number, d1: number, d2: number): Refusal {
  const scope: Scope = which === 2 ? 'tenant' : 'key';
  switch (reason as Reason) {
    case 'requests':
      return { kind: 'requests', scope, used: 0, retryAfterMs: d1 };
    case 'tokens':
      return { kind: 'tokens', scope, used: d2, retryAfterMs: d1 };
    case 'concurrency':
      return { kind: 'concurrency', scope, used: d1 };
    case 'budget':
      return { kind: 'budget', ...BUDGETS[which - 1], spentUnits: d1, reservedUnits: d2 };
  }
  throw new Error(`limits script returned an unknown refusal "${reason}"`);
}
