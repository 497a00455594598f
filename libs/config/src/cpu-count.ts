import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** cgroup v2 (`cpu.max`: "<quota> <period>" or "max <period>") and v1 (`cpu.cfs_quota_us`, -1 = none) CPU limits. */
const CGROUP_FILES = {
  v2: '/sys/fs/cgroup/cpu.max',
  v1Quota: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
  v1Period: '/sys/fs/cgroup/cpu/cpu.cfs_period_us',
};

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The container's CPU limit in whole cores (rounded up), or undefined when there is none. */
export function cgroupCpuLimit(readText: (path: string) => string | undefined = read): number | undefined {
  const v2 = readText(CGROUP_FILES.v2);
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    if (quota === 'max' || !Number(quota) || !Number(period)) return undefined;
    return Math.max(1, Math.ceil(Number(quota) / Number(period)));
  }
  const quota = Number(readText(CGROUP_FILES.v1Quota));
  const period = Number(readText(CGROUP_FILES.v1Period));
  if (!(quota > 0) || !(period > 0)) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/**
 * The cores this process may use: the CPUs it may run on (affinity), capped by a container CPU limit, which
 * `os.availableParallelism()` does not see on Node 20 (a pod limited to 2 CPUs on a 64-core node would
 * otherwise fork 64 event loops that share 2 cores).
 */
export function usableCores(readText?: (path: string) => string | undefined): number {
  const cores = availableParallelism();
  const limit = cgroupCpuLimit(readText);
  return limit === undefined ? cores : Math.min(cores, limit);
}
