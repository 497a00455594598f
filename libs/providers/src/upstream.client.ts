import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Agent, Dispatcher } from 'undici';

/**
 * One keep-alive connection pool per upstream origin (undici Agent), shared by every request.
 * Timeouts: connect, first byte (headersTimeout) and idle between chunks (bodyTimeout).
 */
@Injectable()
export class UpstreamClient implements OnApplicationShutdown {
  readonly agent: Agent;

  constructor(@Inject(APP_CONFIG) private readonly cfg: AppConfig) {
    this.agent = new Agent({
      connections: 256,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      pipelining: 1,
      connect: { timeout: cfg.upstreamConnectTimeoutMs },
      headersTimeout: cfg.upstreamFirstByteTimeoutMs,
      bodyTimeout: cfg.upstreamIdleTimeoutMs,
    });
  }

  request(url: string, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { headersTimeout?: number; bodyTimeout?: number }) {
    const u = new URL(url);
    return this.agent.request({ ...opts, origin: u.origin, path: u.pathname + u.search });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}
