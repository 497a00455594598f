import { LeaseKeeper } from './lease.keeper';
import type { Ticket } from './limit.types';

const ticket = (requestId: string): Ticket => ({
  requestId,
  tenantId: 't',
  keyId: 'k',
  day: '2026-01-10',
  month: '2026-01',
  dayTtlMs: 1,
  monthTtlMs: 1,
  tokens: 1,
  costUnits: 1,
  mask: '1000',
  tpmStart: { key: 0, tenant: 0 },
  slot: { key: true, tenant: false },
});

describe('LeaseKeeper', () => {
  it('renews every held ticket in one call per beat, and no longer those that ended', async () => {
    const calls: { ids: string[]; leaseMs: number }[] = [];
    const keeper = new LeaseKeeper({ renew: async (ts, leaseMs) => void calls.push({ ids: ts.map((t) => t.requestId), leaseMs }) }, 20_000);
    await keeper.renewNow();
    expect(calls).toEqual([]); // nothing held: no call at all
    const [a, b, c] = [ticket('a'), ticket('b'), ticket('c')];
    keeper.hold(a);
    keeper.hold(b);
    keeper.hold(c);
    await keeper.renewNow();
    keeper.drop(b);
    await keeper.renewNow();
    expect(calls).toEqual([
      { ids: ['a', 'b', 'c'], leaseMs: 20_000 },
      { ids: ['a', 'c'], leaseMs: 20_000 },
    ]);
  });

  it('beats every third of a lease, and survives a failing store', async () => {
    jest.useFakeTimers();
    try {
      let calls = 0;
      const keeper = new LeaseKeeper(
        {
          renew: async () => {
            calls++;
            throw new Error('redis down');
          },
        },
        3_000,
      );
      jest.spyOn((keeper as any).logger, 'warn').mockImplementation(() => undefined);
      keeper.hold(ticket('a'));
      keeper.start();
      await jest.advanceTimersByTimeAsync(3_000);
      expect(calls).toBe(3);
      keeper.stop();
      await jest.advanceTimersByTimeAsync(3_000);
      expect(calls).toBe(3);
    } finally {
      jest.useRealTimers();
    }
  });
});
