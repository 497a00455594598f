import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Agent, Dispatcher } from 'undici';

export type UpstreamRequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & {
  headersTimeout?: number;
  bodyTimeout?: number;
  /** Overrides UPSTREAM_CONNECT_TIMEOUT_MS (a route setting). */
  connectTimeout?: number;
};

/**
 * Most distinct route `connectTimeoutMs` values that get a pool of their own. Each is an undici Agent
 * (keep-alive sockets per origin) kept for the life of the process, so their number is bounded: past
 * this many, a route's value is not honoured and it shares the default pool (logged once per value).
 */
export const MAX_CONNECT_TIMEOUT_POOLS = 16;

/**
 * One keep-alive connection pool per upstream origin (undici Agent), shared by every request.
 * Timeouts: connect, first byte (headersTimeout) and idle between chunks (bodyTimeout).
 */
@Injectable()
export class UpstreamClient implements OnApplicationShutdown {
  private readonly logger = new Logger('UpstreamClient');
  readonly agent: Agent;
  /** undici sets the connect timeout per Agent, so a route that overrides it gets a pool of its own, reused by every route with that value. */
  private readonly byConnectTimeout = new Map<number, Agent>();
  private readonly overflow = new Set<number>();

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
      // The default pool is in the map too, hence `>`: MAX_CONNECT_TIMEOUT_POOLS route values on top of it.
      if (this.byConnectTimeout.size > MAX_CONNECT_TIMEOUT_POOLS) {
        if (!this.overflow.has(connectTimeout) && this.overflow.size < 1000) {
          this.overflow.add(connectTimeout);
          this.logger.warn(`more than ${MAX_CONNECT_TIMEOUT_POOLS} distinct route connectTimeoutMs values: ${connectTimeout} ms uses the default (${this.cfg.upstreamConnectTimeoutMs} ms)`);
        }
        return this.agent;
      }
      a = this.createAgent(connectTimeout);
      this.byConnectTimeout.set(connectTimeout, a);
    }
    return a;
  }

  /** Pools in use (the default one included); at most MAX_CONNECT_TIMEOUT_POOLS + 1. */
  get poolCount(): number {
    return this.byConnectTimeout.size;
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
