import { CacheReloader } from './cache.reloader';

describe('CacheReloader', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** Lets pending promise callbacks run (fake timers do not drive microtasks). */
  const settle = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };

  it('retries a failed load with backoff until it succeeds, and never rejects', async () => {
    let calls = 0;
    const failures = 3;
    const r = new CacheReloader(
      'Test',
      async () => {
        calls++;
        if (calls <= failures) throw new Error(`db down ${calls}`);
      },
      { retryMs: 1000, maxRetryMs: 3000, periodMs: 0 },
    );
    jest.spyOn((r as any).logger, 'error').mockImplementation(() => undefined);
    jest.spyOn((r as any).logger, 'log').mockImplementation(() => undefined);
    await expect(r.start()).resolves.toBeUndefined();
    expect(calls).toBe(1);
    expect(r.consecutiveFailures).toBe(1);
    await jest.advanceTimersByTimeAsync(999);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1); // 1 s
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(2000); // 2 s
    expect(calls).toBe(3);
    await jest.advanceTimersByTimeAsync(2999); // 4 s, capped at 3 s
    expect(calls).toBe(3);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toBe(4);
    expect(r.consecutiveFailures).toBe(0);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(4); // no more retries once it worked
    r.stop();
  });

  it('a change while a retry is pending reloads at once (and cancels the retry)', async () => {
    let calls = 0;
    const r = new CacheReloader(
      'Test',
      async () => {
        calls++;
        if (calls === 1) throw new Error('db down');
      },
      { retryMs: 10_000, periodMs: 0 },
    );
    jest.spyOn((r as any).logger, 'error').mockImplementation(() => undefined);
    jest.spyOn((r as any).logger, 'log').mockImplementation(() => undefined);
    await r.start();
    await r.reload();
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(20_000);
    expect(calls).toBe(2);
    r.stop();
  });

  it('reloads whole every period even without any change', async () => {
    let calls = 0;
    const r = new CacheReloader('Test', async () => void calls++, { periodMs: 60_000 });
    await r.start();
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(3);
    r.stop();
    await jest.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(3);
  });

  it('coalesces: one load in flight plus one queued; the returned promise covers the queued one; generation counts loads', async () => {
    const releases: (() => void)[] = [];
    let calls = 0;
    const r = new CacheReloader(
      'Test',
      () => {
        calls++;
        return new Promise<void>((res) => releases.push(res));
      },
      { periodMs: 0 },
    );
    const first = r.reload();
    expect(r.generation).toBe(1);
    const second = r.reload();
    const third = r.reload();
    expect(second).toBe(first);
    expect(third).toBe(first);
    let done = false;
    void first.then(() => (done = true));
    releases[0]();
    await settle();
    expect(calls).toBe(2); // the queued one
    expect(r.generation).toBe(2);
    expect(done).toBe(false);
    releases[1]();
    await settle();
    expect(done).toBe(true);
    expect(calls).toBe(2);
  });

  it('subscribes to the change feed and unsubscribes on stop', async () => {
    let listener: (() => void) | undefined;
    const unsubscribe = jest.fn();
    const feed = { subscribe: (l: () => void) => ((listener = l), unsubscribe) };
    let calls = 0;
    const r = new CacheReloader('Test', async () => void calls++, { periodMs: 0 });
    await r.start(feed as any);
    listener!();
    await settle();
    expect(calls).toBe(2);
    r.stop();
    expect(unsubscribe).toHaveBeenCalled();
  });
});
