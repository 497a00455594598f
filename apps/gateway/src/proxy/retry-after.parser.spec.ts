import { resetDurationMs, retryAfterMs, upstreamWaitMs } from './retry-after.parser';

describe('retry-after parsing', () => {
  it('Retry-After: seconds or an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs('0.5')).toBe(500);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('-3')).toBe(0);
  });

  it.each([
    ['1s', 1000],
    ['20ms', 20],
    ['6m0s', 360_000],
    ['1h2m3.5s', 3_723_500],
    ['0.5', 500],
    ['2', 2000],
  ])('x-ratelimit-reset duration %s', (v, ms) => expect(resetDurationMs(v)).toBe(ms));

  it.each(['', 'x', '1d', '5 s', '1s2'])('rejects %p', (v) => expect(resetDurationMs(v)).toBeUndefined());

  it("prefers retry-after-ms, then Retry-After, then the exhausted limit's reset", () => {
    expect(upstreamWaitMs({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1500);
    expect(upstreamWaitMs({ 'retry-after': '9', 'x-ratelimit-reset-requests': '1s' })).toBe(9000);
    expect(
      upstreamWaitMs({
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': '300ms',
        'x-ratelimit-reset-requests': '20s',
        'x-ratelimit-remaining-requests': '4',
      }),
    ).toBe(300);
    expect(upstreamWaitMs({ 'x-ratelimit-reset-tokens': '300ms', 'x-ratelimit-reset-requests': '2s' })).toBe(2000);
    expect(upstreamWaitMs({})).toBeUndefined();
  });
});
