import { AttemptTicket, MemoryAuthBlockTable, Reservation } from './auth-block.table';

describe('MemoryAuthBlockTable', () => {
  let t = 0;
  const limits = { maxFailures: 3, windowMs: 60_000, blockMs: 120_000 };
  const table = (bounds = { maxCounters: 1000, maxBlocks: 1000 }) => new MemoryAuthBlockTable(limits, bounds, () => t);
  beforeEach(() => (t = 1_000_000));

  const ticket = (r: Reservation): AttemptTicket => {
    if (!r.ok) throw new Error(`refused (${r.retryAfterMs} ms)`);
    return r.ticket;
  };
  const failOnce = (tb: MemoryAuthBlockTable, b: string) => tb.fail(ticket(tb.reserve(b)));

  it('blocks a bucket after maxFailures within the window, for blockMs', () => {
    const tb = table();
    failOnce(tb, '1.2.3.4');
    failOnce(tb, '1.2.3.4');
    expect(tb.blockedMs('1.2.3.4')).toBe(0);
    failOnce(tb, '1.2.3.4');
    expect(tb.blockedMs('1.2.3.4')).toBe(120_000);
    expect(tb.reserve('1.2.3.4')).toEqual({ ok: false, retryAfterMs: 120_000 });
    expect(tb.blockedMs('5.6.7.8')).toBe(0);
    t += 119_500;
    expect(tb.blockedMs('1.2.3.4')).toBe(500);
    t += 500;
    expect(tb.blockedMs('1.2.3.4')).toBe(0);
    expect(tb.reserve('1.2.3.4').ok).toBe(true);
  });

  it('forgets failures older than the window', () => {
    const tb = table();
    failOnce(tb, 'a');
    failOnce(tb, 'a');
    t += 60_000;
    failOnce(tb, 'a');
    failOnce(tb, 'a');
    expect(tb.blockedMs('a')).toBe(0);
    failOnce(tb, 'a');
    expect(tb.blockedMs('a')).toBeGreaterThan(0);
  });

  it('reserves before judging: concurrent attempts never exceed maxFailures, successes give their place back', () => {
    const tb = table();
    const rs = Array.from({ length: 10 }, () => tb.reserve('c'));
    expect(rs.filter((r) => r.ok)).toHaveLength(3);
    expect(rs[3]).toEqual({ ok: false, retryAfterMs: 1000 });
    // One turned out good: its place is free again; the other two failed.
    tb.release(ticket(rs[0]));
    tb.fail(ticket(rs[1]));
    tb.fail(ticket(rs[2]));
    expect(tb.blockedMs('c')).toBe(0);
    const last = ticket(tb.reserve('c'));
    expect(tb.reserve('c').ok).toBe(false);
    tb.fail(last);
    expect(tb.blockedMs('c')).toBe(120_000);
  });

  it('a spray of fresh addresses evicts counters, never blocks', () => {
    const tb = table({ maxCounters: 100, maxBlocks: 100 });
    for (let i = 0; i < 3; i++) failOnce(tb, 'blocked');
    failOnce(tb, 'half');
    failOnce(tb, 'half');
    for (let i = 0; i < 10_001; i++) failOnce(tb, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(tb.size.counters).toBeLessThanOrEqual(100);
    expect(tb.blockedMs('blocked')).toBe(120_000);
    expect(tb.reserve('blocked').ok).toBe(false);
    // The half-used counter was the least recently used: evicted, as the bound allows.
    failOnce(tb, 'half');
    expect(tb.blockedMs('half')).toBe(0);
  });

  it('evicts only expired blocks; full of live blocks, it refuses every unproven credential instead of unblocking', () => {
    const tb = table({ maxCounters: 1000, maxBlocks: 5 });
    const block = (b: string) => {
      for (let i = 0; i < 3; i++) failOnce(tb, b);
    };
    for (let i = 0; i < 5; i++) block(`b${i}`);
    expect(tb.size.blocks).toBe(5);
    // A sixth bucket fills its allowance: no room, so nobody gets to guess (not even a fresh address) …
    block('b5');
    expect(tb.size.blocks).toBe(5);
    for (let i = 0; i < 6; i++) expect(tb.blockedMs(`b${i}`) > 0 || !tb.reserve(`b${i}`).ok).toBe(true);
    expect(tb.reserve('fresh')).toEqual({ ok: false, retryAfterMs: 120_000 });
    // … and every earlier block still holds.
    for (let i = 0; i < 5; i++) expect(tb.blockedMs(`b${i}`)).toBe(120_000);
    // Once blocks expire they make room, and guessing resumes under the usual rules.
    t += 120_000;
    expect(tb.reserve('fresh').ok).toBe(true);
    block('b6');
    expect(tb.blockedMs('b6')).toBe(120_000);
    expect(tb.blockedMs('b0')).toBe(0);
  });

  it('keeps the longer of two blocks learned for one bucket (e.g. from Redis)', () => {
    const tb = table();
    tb.block('x', t + 5_000);
    tb.block('x', t + 1_000);
    expect(tb.blockedMs('x')).toBe(5_000);
  });
});
