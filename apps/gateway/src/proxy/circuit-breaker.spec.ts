import { CircuitBreaker, CircuitLabels, CircuitState } from './circuit-breaker';

const A: CircuitLabels = { providerId: 'p-a', provider: 'a', model: 'm' };
const A2: CircuitLabels = { providerId: 'p-a', provider: 'a', model: 'other' };

function setup(failureThreshold = 3, cooldownMs = 1000) {
  let t = 0;
  const changes: [string, CircuitState][] = [];
  const cb = new CircuitBreaker({ failureThreshold, cooldownMs, now: () => t, onChange: (l, s) => changes.push([`${l.provider}/${l.model}`, s]) });
  const fail = (l = A) => cb.failure(cb.tryPass(l)!, l, 'HTTP 500');
  return { cb, changes, fail, advance: (ms: number) => (t += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures and then skips the target', () => {
    const { cb, changes, fail } = setup(3);
    fail();
    fail();
    expect(cb.tryPass(A)).toEqual({ key: expect.any(String), probe: false });
    fail();
    expect(cb.isOpen(A)).toBe(true);
    expect(cb.tryPass(A)).toBeUndefined();
    expect(changes).toEqual([['a/m', 'open']]);
  });

  it('a success in between resets the count', () => {
    const { cb, fail } = setup(3);
    fail();
    fail();
    cb.success(cb.tryPass(A)!);
    fail();
    fail();
    expect(cb.isOpen(A)).toBe(false);
    expect(cb.snapshot()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('circuits are per provider and model', () => {
    const { cb, fail } = setup(1);
    fail(A);
    expect(cb.tryPass(A)).toBeUndefined();
    expect(cb.tryPass(A2)).toBeDefined();
  });

  it('half-opens after the cool-down with exactly one probe; the probe closes it on success', () => {
    const { cb, changes, fail, advance } = setup(1, 1000);
    fail();
    advance(999);
    expect(cb.tryPass(A)).toBeUndefined();
    expect(cb.retryInMs([A])).toBe(1);
    advance(1);
    const probe = cb.tryPass(A)!;
    expect(probe.probe).toBe(true);
    expect(cb.tryPass(A)).toBeUndefined(); // the probe is out: everyone else still skips
    cb.success(probe);
    expect(cb.tryPass(A)).toEqual({ key: probe.key, probe: false });
    expect(changes.map((c) => c[1])).toEqual(['open', 'half_open', 'closed']);
    expect(cb.snapshot()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0, lastError: null });
  });

  it('a failed probe re-opens for another full cool-down', () => {
    const { cb, fail, advance } = setup(2, 1000);
    fail();
    fail();
    advance(1000);
    const probe = cb.tryPass(A)!;
    cb.failure(probe, A, 'timeout');
    expect(cb.isOpen(A)).toBe(true);
    advance(500);
    expect(cb.tryPass(A)).toBeUndefined();
    expect(cb.snapshot()[0]).toMatchObject({ state: 'open', retryInMs: 500, lastError: 'timeout', consecutiveFailures: 3 });
    advance(500);
    expect(cb.tryPass(A)?.probe).toBe(true);
  });

  it('an abandoned probe frees the slot for the next request', () => {
    const { cb, fail, advance } = setup(1, 10);
    fail();
    advance(10);
    const probe = cb.tryPass(A)!;
    cb.release(probe);
    expect(cb.tryPass(A)?.probe).toBe(true);
  });

  it('a late success from before the circuit opened does not close it', () => {
    const { cb, fail } = setup(1);
    const early = cb.tryPass(A)!;
    fail();
    cb.success(early);
    expect(cb.isOpen(A)).toBe(true);
  });

  it('threshold 0 disables it', () => {
    const { cb, fail } = setup(0);
    for (let i = 0; i < 10; i++) fail();
    expect(cb.tryPass(A)).toBeDefined();
    expect(cb.snapshot()).toEqual([]);
  });
});
