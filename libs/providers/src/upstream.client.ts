import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Agent, Dispatcher, buildConnector } from 'undici';
import { EGRESS_POLICY, EGRESS_RESOLVER, EgressChecker, EgressDeniedError, EgressPolicy, EgressResolver, dnsResolver } from './egress.policy';

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

  private readonly policy: EgressChecker;
  private readonly resolver: EgressResolver;

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    @Optional() @Inject(EGRESS_POLICY) policy?: EgressChecker,
    @Optional() @Inject(EGRESS_RESOLVER) resolver?: EgressResolver,
  ) {
    this.policy = policy ?? new EgressPolicy();
    this.resolver = resolver ?? dnsResolver;
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
          this.logger.warn(
            `more than ${MAX_CONNECT_TIMEOUT_POOLS} distinct route connectTimeoutMs values: ${connectTimeout} ms uses the default (${this.cfg.upstreamConnectTimeoutMs} ms)`,
          );
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
      connect: this.checkedConnector(connectTimeout),
      headersTimeout: this.cfg.upstreamFirstByteTimeoutMs,
      bodyTimeout: this.cfg.upstreamIdleTimeoutMs,
    });
  }

  /**
   * undici's connector behind the egress policy. Runs once per new connection (pooled ones are reused), never
   * per request. An address literal is checked before connecting; a name is resolved through the injected
   * resolver, every address is checked, and the socket connects to those very addresses (the lookup returns
   * them), so a second DNS answer cannot swap in another (DNS rebinding). A refusal opens no socket.
   */
  private checkedConnector(timeout: number): buildConnector.connector {
    // A lookup knows no port, so one connector per destination port (bounded; past it, one built per call).
    const byPort = new Map<number, buildConnector.connector>();
    const connectorFor = (port: number) => {
      let c = byPort.get(port);
      if (!c) {
        c = buildConnector({ timeout, lookup: this.checkedLookup(port) });
        if (byPort.size < 1000) byPort.set(port, c);
      }
      return c;
    };
    return (opts, callback) => {
      const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
      if (isIP(opts.hostname)) {
        const v = this.policy.check(opts.hostname, port);
        if (!v.allowed) {
          // Asynchronously, as a failed connect would be: undici resumes its queue from the callback.
          process.nextTick(callback, new EgressDeniedError(opts.hostname, port, v.rule), null);
          return;
        }
      }
      connectorFor(port)(opts, callback);
    };
  }

  private checkedLookup(port: number): LookupFunction {
    return (hostname, options, callback) => {
      const all = (options as { all?: boolean }).all === true;
      const family = (options as { family?: number | string }).family;
      const want = family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0;
      const answer = (found: { address: string; family: number }[]) => {
        const addrs = found.filter((a) => !want || a.family === want);
        if (!addrs.length) return callback(Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), '', 0);
        const v = this.policy.checkResolved(
          addrs.map((a) => a.address),
          port,
          hostname,
        );
        if (!v.allowed) return callback(new EgressDeniedError(hostname, port, v.rule), '', 0);
        if (all) (callback as unknown as (e: null, a: typeof addrs) => void)(null, addrs);
        else callback(null, addrs[0].address, addrs[0].family);
      };
      Promise.resolve()
        .then(() => this.resolver(hostname))
        .then(answer, (e: unknown) => callback(e as NodeJS.ErrnoException, '', 0))
        // Never an unhandled rejection (a crash) from a callback that threw: the connect timeout ends the socket.
        .catch((e: unknown) => this.logger.error(`lookup of ${hostname}: ${(e as Error).message}`));
    };
  }
}
