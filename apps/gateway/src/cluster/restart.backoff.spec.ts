import { RESTART_MAX_MS, restartDelayMs } from './restart.backoff';

describe('worker restart backoff', () => {
  it('doubles from 250 ms with each early death in a row, capped at 30 s', () => {
    expect([1, 2, 3, 4].map(restartDelayMs)).toEqual([250, 500, 1000, 2000]);
    expect(restartDelayMs(8)).toBe(RESTART_MAX_MS);
    expect(restartDelayMs(100)).toBe(RESTART_MAX_MS);
    expect(restartDelayMs(0)).toBe(250);
  });
});
