import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { OpenAIError } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import type { Server, ServerResponse } from 'node:http';
import type { CallContext } from '../pipeline/call-context';

/** Probes and scrapes keep being answered while draining: readiness must be able to say 503. */
const ALWAYS_SERVED = new Set(['/healthz', '/readyz', '/metrics']);
/** After the grace period, how long aborted requests get to write their error event and ledger row. */
const ABORT_SETTLE_MS = 2_000;

export function shuttingDown(): OpenAIError {
  return new OpenAIError(503, 'The gateway is shutting down; retry the request.', 'server_error', 'gateway_shutting_down', null, { 'retry-after': '1' });
}

export interface DrainResult {
  /** Requests in flight when the drain began. */
  inFlight: number;
  /** Of those, cut off at the deadline (each still metered, with a 503 `gateway_shutting_down`). */
  aborted: number;
  ms: number;
}

/**
 * Graceful shutdown of the data plane, run by `app.close()` (SIGTERM/SIGINT via installGracefulShutdown)
 * before any other shutdown hook, so the ledger flush and pool closing that follow see every row:
 *   1. readiness turns 503 and new API requests are refused with 503 + `Connection: close`
 *      (the listener stays open so load balancers and probes get that answer instead of a refused connection);
 *   2. requests and streams in flight may finish until SHUTDOWN_GRACE_MS;
 *   3. what is left is aborted (the client reads an error event, the ledger gets its row);
 *   4. idle keep-alive sockets are closed; Nest then closes the server, LedgerWriter flushes, pools close.
 */
@Injectable()
export class DrainService implements OnModuleDestroy {
  private readonly logger = new Logger('Drain');
  private readonly contexts = new Set<CallContext>();
  private http = 0;
  private state: 'serving' | 'draining' | 'aborting' = 'serving';
  private drained?: Promise<DrainResult>;
  private wake?: () => void;

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  get draining(): boolean {
    return this.state !== 'serving';
  }

  get inFlight(): number {
    return Math.max(this.http, this.contexts.size);
  }

  /** Express middleware, installed before body parsing: counts requests, refuses new work while draining. */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (this.admit(req.path, res)) next();
  };

  /**
   * Counts a request until its response closes, or (draining) answers it 503 and returns false: new work is
   * refused, probes and scrapes on `path` are still served (with `Connection: close`).
   */
  admit(path: string, res: ServerResponse): boolean {
    if (this.state !== 'serving') {
      res.setHeader('connection', 'close');
      if (!ALWAYS_SERVED.has(path)) {
        const err = shuttingDown();
        res.writeHead(503, { ...err.headers, 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(err.body));
        return false;
      }
    }
    this.http++;
    res.once('close', this.closed);
    return true;
  }

  private readonly closed = (): void => {
    this.http--;
    this.changed();
  };

  track(ctx: CallContext): void {
    this.contexts.add(ctx);
    if (this.state === 'aborting') ctx.abort.abort(shuttingDown());
  }

  untrack(ctx: CallContext): void {
    if (this.contexts.delete(ctx)) this.changed();
  }

  async onModuleDestroy(): Promise<void> {
    await this.drain();
  }

  /** Idempotent: a second call (a second close) waits for the first drain. */
  drain(graceMs = this.cfg.shutdownGraceMs): Promise<DrainResult> {
    this.drained ??= this.run(graceMs);
    return this.drained;
  }

  private async run(graceMs: number): Promise<DrainResult> {
    const t0 = Date.now();
    this.state = 'draining';
    const inFlight = this.inFlight;
    const server = this.server();
    // Idle keep-alive connections would otherwise carry new requests in; in-flight ones close after their response.
    server?.closeIdleConnections();
    if (inFlight) this.logger.log(`draining ${inFlight} request(s), up to ${graceMs} ms`);
    let aborted = 0;
    if (!(await this.idle(graceMs))) {
      this.state = 'aborting';
      aborted = this.contexts.size;
      this.logger.warn(`grace period over: aborting ${aborted} request(s)`);
      for (const ctx of this.contexts) if (!ctx.abort.signal.aborted) ctx.abort.abort(shuttingDown());
      if (!(await this.idle(ABORT_SETTLE_MS))) server?.closeAllConnections();
    }
    server?.closeIdleConnections();
    return { inFlight, aborted, ms: Date.now() - t0 };
  }

  private idle(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        if (this.inFlight > 0) return;
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
    });
  }

  private changed(): void {
    this.wake?.();
  }

  private server(): Server | undefined {
    return this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
  }
}
