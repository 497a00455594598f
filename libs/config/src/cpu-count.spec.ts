import { availableParallelism } from 'node:os';
import { cgroupCpuLimit, usableCores } from './cpu-count';

const files = (map: Record<string, string>) => (path: string) => map[path];

describe('usable cores', () => {
  it('reads a cgroup v2 CPU limit, rounded up to whole cores; "max" is no limit', () => {
    expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': '200000 100000' }))).toBe(2);
    expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' }))).toBe(2);
    expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' }))).toBe(1);
    expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }))).toBeUndefined();
  });

  it('reads a cgroup v1 CPU limit; -1 is no limit; no cgroup files is no limit', () => {
    const v1 = (quota: string) => files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': quota, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' });
    expect(cgroupCpuLimit(v1('400000'))).toBe(4);
    expect(cgroupCpuLimit(v1('-1'))).toBeUndefined();
    expect(cgroupCpuLimit(files({}))).toBeUndefined();
  });

  it('is the CPUs available, capped by the container limit', () => {
    expect(usableCores(files({}))).toBe(availableParallelism());
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '100000 100000' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': `${(availableParallelism() + 8) * 100000} 100000` }))).toBe(availableParallelism());
  });
});
