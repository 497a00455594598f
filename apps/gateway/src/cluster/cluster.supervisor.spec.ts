import { parseConfig } from '@gw/config';
import { superviseWorkersIfPrimary, workerEnv, workerPoolSize } from './cluster.supervisor';

describe('cluster supervisor', () => {
  it('workers split the default database pool (10) unless DATABASE_POOL_SIZE is set, never below 2 each', () => {
    expect([1, 2, 3, 4, 8, 16].map(workerPoolSize)).toEqual([10, 5, 4, 3, 2, 2]);
    expect(workerEnv(4, {})).toEqual({ DATABASE_POOL_SIZE: '3' });
    expect(workerEnv(4, { DATABASE_POOL_SIZE: '7' })).toEqual({});
  });

  it('one worker (the default without Redis) runs the app in this process: no cluster', () => {
    const noEnvFile = '/nonexistent/.env';
    expect(superviseWorkersIfPrimary(parseConfig({}), noEnvFile)).toBe(false);
    expect(superviseWorkersIfPrimary(parseConfig({ GATEWAY_WORKERS: '1', REDIS_URL: 'redis://127.0.0.1:6379' }), noEnvFile)).toBe(false);
  });
});
