import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/**
 * A Lua script run by its SHA (EVALSHA: one round trip, no script text on the wire); the first call on a
 * fresh (or flushed) Redis gets NOSCRIPT and runs it with EVAL, which also caches it there.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly src: string) {
    this.sha = createHash('sha1').update(src).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!String((e as Error).message).includes('NOSCRIPT')) throw e;
      return redis.eval(this.src, keys.length, ...keys, ...args);
    }
  }
}
