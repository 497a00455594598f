import { Inject, Injectable } from '@nestjs/common';
import { InjectMetric, makeCounterProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { NextFunction, Request, Response } from 'express';
import type { ServerResponse } from 'node:http';
import type { Counter, Histogram } from 'prom-client';

/** Which app a process-wide metric came from: gateway and admin share one registry under `npm start`. */
export const OBSERVED_APP = Symbol('OBSERVED_APP');
export type ObservedApp = 'gateway' | 'admin';

export const HTTP_METRIC_PROVIDERS = [
  makeCounterProvider({
    name: 'http_requests_total',
    help: 'Every HTTP request (authenticated or not), by app, method, route pattern and status class',
    labelNames: ['app', 'method', 'route', 'status_class'],
  }),
  makeHistogramProvider({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by app, method and route pattern',
    labelNames: ['app', 'method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  }),
];

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);
/** Where Nest mounts app-wide middleware; seen as `req.route` only when no handler matched. */
export const ALL_ROUTES_PATH = '{*path}';

/**
 * Counts every request at the HTTP edge, including those refused before the proxy (401, 413, unknown
 * paths). The route label is Express's matched pattern (`/admin/tenants/:id`), never the raw URL.
 */
@Injectable()
export class HttpMetrics {
  constructor(
    @Inject(OBSERVED_APP) private readonly app: ObservedApp,
    @InjectMetric('http_requests_total') private readonly requests: Counter,
    @InjectMetric('http_request_duration_seconds') private readonly duration: Histogram,
  ) {}

  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    const t0 = performance.now();
    res.once('close', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      this.observe(req.method, typeof route === 'string' && !route.endsWith(ALL_ROUTES_PATH) ? route : 'unmatched', res, t0);
    });
    next();
  };

  /** One request, once its response closed: `route` is the matched pattern (or `unmatched`), `t0` its start. */
  observe(method: string | undefined, route: string, res: ServerResponse, t0: number): void {
    const labels = { app: this.app, method: method && METHODS.has(method) ? method : 'OTHER', route };
    // A client that left before the end is 499, as nginx logs it.
    const status = res.writableFinished ? res.statusCode : 499;
    this.requests.inc({ ...labels, status_class: `${Math.floor(status / 100)}xx` });
    this.duration.observe(labels, (performance.now() - t0) / 1000);
  }
}
