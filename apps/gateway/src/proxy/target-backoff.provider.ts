import { Provider } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { RedisTargetBackoff } from './redis-target.backoff';
import { MemoryTargetBackoff, TargetBackoff } from './target.backoff';

/** Backoffs shared through Redis when REDIS_URL is set (every replica skips a rate-limited target), else per process. */
export const TARGET_BACKOFF_PROVIDER: Provider = {
  provide: TargetBackoff,
  inject: [APP_CONFIG],
  useFactory: async (cfg: AppConfig): Promise<TargetBackoff> => {
    if (!cfg.redisUrl) return new MemoryTargetBackoff();
    const b = new RedisTargetBackoff(cfg.redisUrl);
    await b.start();
    return b;
  },
};
