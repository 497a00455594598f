import { Injectable } from '@nestjs/common';
import { InjectMetric, makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge, Histogram } from 'prom-client';

/** Buckets for LLM calls: a cache hit takes milliseconds, a long generation minutes. */
export const LLM_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];

export const GATEWAY_METRIC_PROVIDERS = [
  makeCounterProvider({
    name: 'gateway_requests_total',
    help: 'Requests that passed authentication, by tenant, model, provider, endpoint and status class',
    labelNames: ['tenant', 'model', 'provider', 'endpoint', 'status_class'],
  }),
  makeHistogramProvider({
    name: 'gateway_request_duration_seconds',
    help: 'Whole request duration, including streaming',
    labelNames: ['endpoint', 'provider', 'streamed'],
    buckets: LLM_SECONDS_BUCKETS,
  }),
  makeHistogramProvider({
    name: 'gateway_time_to_first_byte_seconds',
    help: 'Time from request to the first upstream byte sent to the client',
    labelNames: ['endpoint', 'provider', 'streamed'],
    buckets: LLM_SECONDS_BUCKETS,
  }),
  makeCounterProvider({ name: 'gateway_tokens_total', help: 'Tokens by tenant, model and direction', labelNames: ['tenant', 'model', 'direction'] }),
  makeCounterProvider({ name: 'gateway_cost_usd_total', help: 'Metered cost in USD by tenant and model', labelNames: ['tenant', 'model'] }),
  makeCounterProvider({
    name: 'gateway_upstream_attempts_total',
    help: 'Upstream attempts by provider and outcome (ok, retry, fallback, error reason)',
    labelNames: ['provider', 'outcome'],
  }),
  makeGaugeProvider({ name: 'gateway_requests_in_flight', help: 'Requests being served now', labelNames: ['endpoint'] }),
  makeGaugeProvider({ name: 'gateway_ledger_queue_depth', help: 'Usage rows waiting to be written' }),
  makeHistogramProvider({
    name: 'gateway_ledger_flush_seconds',
    help: 'Ledger batch write latency',
    labelNames: ['result'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  }),
];

export interface FinishedRequest {
  tenant: string;
  model: string;
  provider: string;
  endpoint: string;
  status: number;
  streamed: boolean;
  durationMs: number;
  ttfbMs: number | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/**
 * The gateway's metrics. Label values are bounded: tenant names and configured model names only,
 * never keys, request ids or free text (an unrouted model is labelled `unrouted`).
 */
@Injectable()
export class GatewayMetrics {
  constructor(
    @InjectMetric('gateway_requests_total') private readonly requests: Counter<string>,
    @InjectMetric('gateway_request_duration_seconds') private readonly duration: Histogram<string>,
    @InjectMetric('gateway_time_to_first_byte_seconds') private readonly ttfb: Histogram<string>,
    @InjectMetric('gateway_tokens_total') private readonly tokens: Counter<string>,
    @InjectMetric('gateway_cost_usd_total') private readonly cost: Counter<string>,
    @InjectMetric('gateway_upstream_attempts_total') private readonly attempts: Counter<string>,
    @InjectMetric('gateway_requests_in_flight') private readonly inFlight: Gauge<string>,
    @InjectMetric('gateway_ledger_queue_depth') readonly ledgerDepth: Gauge<string>,
    @InjectMetric('gateway_ledger_flush_seconds') private readonly ledgerFlush: Histogram<string>,
  ) {}

  started(endpoint: string): void {
    this.inFlight.inc({ endpoint });
  }

  finished(r: FinishedRequest): void {
    this.inFlight.dec({ endpoint: r.endpoint });
    const statusClass = `${Math.floor(r.status / 100)}xx`;
    this.requests.inc({ tenant: r.tenant, model: r.model, provider: r.provider, endpoint: r.endpoint, status_class: statusClass });
    const streamed = r.streamed ? 'true' : 'false';
    this.duration.observe({ endpoint: r.endpoint, provider: r.provider, streamed }, r.durationMs / 1000);
    if (r.ttfbMs !== null) this.ttfb.observe({ endpoint: r.endpoint, provider: r.provider, streamed }, r.ttfbMs / 1000);
    if (r.inputTokens) this.tokens.inc({ tenant: r.tenant, model: r.model, direction: 'input' }, r.inputTokens);
    if (r.outputTokens) this.tokens.inc({ tenant: r.tenant, model: r.model, direction: 'output' }, r.outputTokens);
    if (r.costUsd) this.cost.inc({ tenant: r.tenant, model: r.model }, r.costUsd);
  }

  upstreamAttempt(provider: string, outcome: string): void {
    this.attempts.inc({ provider, outcome });
  }

  ledgerFlushed(rows: number, ms: number, error?: Error): void {
    this.ledgerFlush.observe({ result: error ? 'error' : 'ok' }, ms / 1000);
  }
}
