import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Agent, Dispatcher } from 'undici';

export type UpstreamRequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & {
  headersTimeout?: number;
  bodyTimeout?: number;
  /** Overrides UPSTREAM_CONNECT_TIMEOUT_MS (a route setting). */
  connectTimeout?: number;
};

/**
 * One keep-alive connection pool per upstream origin (undici Agent), shared by every request.
 * Timeouts: connect, first byte (headersTimeout) and idle between chunks (bodyTimeout).
 */
@Injectable()
export class UpstreamClient implements OnApplicationShutdown {
  readonly agent: Agent;
  /** undici sets the connect timeout per Agent, so a route that overrides it gets pools of its own (few distinct values). */
  private readonly byConnectTimeout = new Map<number, Agent>();

  constructor(@Inject(APP_CONFIG) private readonly cfg: AppConfig) {
    this.agent = this.createAgent(cfg.upstreamConnectTimeoutMs);
    this.byConnectTimeout.set(cfg.upstreamConnectTimeoutMs, this.agent);
  }

  request(url: string, opts: UpstreamRequestOptions) {
    const { connectTimeout, ...rest } = opts;
    const u = new URL(url);
    return this.agentFor(connectTimeout).request({ ...rest, origin: u.origin, path: u.pathname + u.search });
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.byConnectTimeout.values()].map((a) => a.close().catch(() => undefined)));
  }

  private agentFor(connectTimeout: number | undefined): Agent {
    if (!connectTimeout) return this.agent;
    let a = this.byConnectTimeout.get(connectTimeout);
    if (!a) {
      a = this.createAgent(connectTimeout);
      this.byConnectTimeout.set(connectTimeout, a);
    }
    return a;
  }

  private createAgent(connectTimeout: number): Agent {
    return new Agent({
      connections: 256,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      pipelining: 1,
      connect: { timeout: connectTimeout },
      headersTimeout: this.cfg.upstreamFirstByteTimeoutMs,
      bodyTimeout: this.cfg.upstreamIdleTimeoutMs,
    });
  }
}
