import { AuthFailureLimiter } from './auth-failure.limiter';

describe('AuthFailureLimiter', () => {
  let t = 0;
  const limiter = () => new AuthFailureLimiter({ maxFailures: 3, windowMs: 60_000, blockMs: 120_000 }, () => t);
  beforeEach(() => (t = 1_000_000));

  it('blocks an address after maxFailures within the window, for blockMs', () => {
    const l = limiter();
    l.recordFailure('1.2.3.4');
    l.recordFailure('1.2.3.4');
    expect(l.retryAfterSeconds('1.2.3.4')).toBe(0);
    l.recordFailure('1.2.3.4');
    expect(l.retryAfterSeconds('1.2.3.4')).toBe(120);
    expect(l.retryAfterSeconds('5.6.7.8')).toBe(0);
    t += 119_500;
    expect(l.retryAfterSeconds('1.2.3.4')).toBe(1);
    t += 500;
    expect(l.retryAfterSeconds('1.2.3.4')).toBe(0);
  });

  it('forgets failures older than the window', () => {
    const l = limiter();
    l.recordFailure('a');
    l.recordFailure('a');
    t += 60_000;
    l.recordFailure('a');
    l.recordFailure('a');
    expect(l.retryAfterSeconds('a')).toBe(0);
    l.recordFailure('a');
    expect(l.retryAfterSeconds('a')).toBeGreaterThan(0);
  });
});
