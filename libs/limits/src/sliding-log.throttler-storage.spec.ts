import { ThrottlerStorageService } from '@nestjs/throttler';
import { SlidingLogThrottlerStorage } from './sliding-log.throttler-storage';

describe('SlidingLogThrottlerStorage', () => {
  it('blocks at the limit and frees a slot when the oldest hit expires (sliding log)', async () => {
    let now = 1_000_000;
    const s = new SlidingLogThrottlerStorage(() => now);
    for (let i = 0; i < 3; i++) {
      expect((await s.increment('k', 60_000, 3, 0, 'rpm')).isBlocked).toBe(false);
      now += 10_000;
    }
    const blocked = await s.increment('k', 60_000, 3, 0, 'rpm');
    expect(blocked.isBlocked).toBe(true);
    expect(blocked.timeToBlockExpire).toBe(30); // first hit (t=0) expires at t=60 s; now is t=30 s
    now += 30_000;
    expect((await s.increment('k', 60_000, 3, 0, 'rpm')).isBlocked).toBe(false);
    expect((await s.increment('k', 60_000, 3, 0, 'rpm')).isBlocked).toBe(true);
    s.close();
  });

  it('agrees with @nestjs/throttler storage on an allowed/blocked sequence', async () => {
    const ours = new SlidingLogThrottlerStorage();
    const theirs = new ThrottlerStorageService();
    const a: boolean[] = [];
    const b: boolean[] = [];
    for (let i = 0; i < 25; i++) {
      a.push((await ours.increment('x', 60_000, 10, 0, 'rpm')).isBlocked);
      b.push((await theirs.increment('x', 60_000, 10, 0, 'rpm')).isBlocked);
    }
    expect(a).toEqual(b);
    expect(a.filter((x) => !x)).toHaveLength(10);
    ours.close();
    theirs.onApplicationShutdown();
  });

  it('survives 200k hits in one window, where the package storage throws', async () => {
    const s = new SlidingLogThrottlerStorage(() => 5);
    let last: Awaited<ReturnType<SlidingLogThrottlerStorage['increment']>> | undefined;
    for (let i = 0; i < 200_000; i++) last = await s.increment('big', 60_000, 10_000_000, 0, 'rpm');
    expect(last!.isBlocked).toBe(false);
    expect(last!.totalHits).toBe(200_000);
    s.close();
  });
});
