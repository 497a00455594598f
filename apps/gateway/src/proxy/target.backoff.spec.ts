import { MemoryTargetBackoff } from './target.backoff';

describe('MemoryTargetBackoff', () => {
  it('holds a target for the given time, keeps the longer of two, and forgets it after', () => {
    let t = 0;
    const b = new MemoryTargetBackoff(() => t);
    expect(b.check('p/m')).toBeUndefined();
    b.hold('p/m', 1000, 'rate_limit');
    b.hold('p/m', 200, 'rate_limit');
    t = 500;
    expect(b.check('p/m')).toEqual({ reason: 'rate_limit', remainingMs: 500 });
    b.hold('p/m', 2000, 'quota');
    expect(b.check('p/m')).toEqual({ reason: 'quota', remainingMs: 2000 });
    expect(b.snapshot()).toEqual([{ key: 'p/m', reason: 'quota', remainingMs: 2000 }]);
    t = 2500;
    expect(b.check('p/m')).toBeUndefined();
    b.hold('p/m', 0, 'rate_limit');
    expect(b.check('p/m')).toBeUndefined();
  });
});
