import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { InjectMetric, makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge, Histogram } from 'prom-client';

/** Buckets for LLM calls: a cache hit takes milliseconds, a long generation minutes. */
export const LLM_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];

/** Circuit breaker states, exported one-hot so that `{state="open"} == 1` is the whole alert. */
export const CIRCUIT_STATES = ['closed', 'half_open', 'open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** What a writer of usage rows (LedgerWriter) offers to be watched, without this lib depending on metering. */
export interface WatchedLedger {
  readonly depth: number;
  onFlush?: (rows: number, ms: number, error?: Error) => void;
}

/**
 * Queue depth is read when Prometheus scrapes, not pushed from the hot path. prom-client has one registry
 * per process and returns the first gauge created, so its callback reads this set rather than one writer.
 */
const watchedLedgers = new Set<WatchedLedger>();

/** What a price table (PriceTable) offers to be watched, without this lib depending on metering. */
export interface WatchedPrices {
  observer?: {
    priced(source: string, match: string): void;
    unpriced(model: string, outcome: 'fallback' | 'refused'): void;
  };
}

export const GATEWAY_METRIC_PROVIDERS = [
  makeCounterProvider({
    name: 'gateway_requests_total',
    help: 'Requests that passed authentication, by tenant, model, provider, endpoint and status class',
    labelNames: ['tenant', 'model', 'provider', 'endpoint', 'status_class'],
  }),
  makeHistogramProvider({
    name: 'gateway_request_duration_seconds',
    help: 'Whole request duration, including streaming',
    labelNames: ['tenant', 'endpoint', 'provider', 'streamed'],
    buckets: LLM_SECONDS_BUCKETS,
  }),
  makeHistogramProvider({
    name: 'gateway_time_to_first_byte_seconds',
    help: 'Time from request to the first upstream byte sent to the client (time to first token when streamed)',
    labelNames: ['endpoint', 'provider', 'streamed'],
    buckets: LLM_SECONDS_BUCKETS,
  }),
  makeCounterProvider({
    name: 'gateway_tokens_total',
    help: 'Tokens by tenant, model and direction (input, output)',
    labelNames: ['tenant', 'model', 'direction'],
  }),
  makeCounterProvider({ name: 'gateway_cost_usd_total', help: 'Metered cost in USD by tenant and model', labelNames: ['tenant', 'model'] }),
  makeCounterProvider({
    name: 'gateway_upstream_attempts_total',
    help: 'Upstream attempts (every try, retries included) by provider and result (ok, error)',
    labelNames: ['provider', 'result'],
  }),
  makeCounterProvider({
    name: 'gateway_upstream_errors_total',
    help: 'Failed upstream attempts and broken streams by provider and reason (http_<status>, timeout, network, stream, circuit_open, backoff)',
    labelNames: ['provider', 'reason'],
  }),
  makeCounterProvider({ name: 'gateway_upstream_retries_total', help: 'Retries of the same upstream target, by provider', labelNames: ['provider'] }),
  makeCounterProvider({
    name: 'gateway_upstream_fallbacks_total',
    help: 'Requests that gave up on a provider and moved to the next target, by the provider given up on',
    labelNames: ['provider'],
  }),
  makeCounterProvider({
    name: 'gateway_upstream_backoffs_total',
    help: 'Targets backed off after their provider answered 429 (reason rate_limit) or said the account is out of credit (quota), by provider',
    labelNames: ['provider', 'reason'],
  }),
  makeGaugeProvider({
    name: 'gateway_circuit_state',
    help: 'Circuit breaker state per provider target, one-hot over state (closed, half_open, open)',
    labelNames: ['provider', 'target', 'state'],
    // Several workers (GATEWAY_WORKERS): each has its own breaker; `open` = 1 when any worker's is open.
    aggregator: 'max',
  }),
  makeCounterProvider({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused by a rate limit, by tenant and kind (requests, tokens, concurrency)',
    labelNames: ['tenant', 'kind'],
  }),
  makeCounterProvider({
    name: 'gateway_budget_refusals_total',
    help: 'Requests refused by a budget, by tenant and period (daily, monthly)',
    labelNames: ['tenant', 'period'],
  }),
  makeGaugeProvider({
    name: 'gateway_budget_utilisation_ratio',
    help: 'Spent (and reserved) share of a tenant budget, by tenant and period (daily, monthly); 1 = exhausted',
    labelNames: ['tenant', 'period'],
    // Workers share the counters (Redis) and each sets what it last saw: the highest is the freshest in a period.
    aggregator: 'max',
  }),
  makeGaugeProvider({ name: 'gateway_requests_in_flight', help: 'Requests being served now', labelNames: ['endpoint'] }),
  makeGaugeProvider({
    name: 'gateway_ledger_queue_depth',
    help: 'Usage rows waiting to be written',
    collect(this: Gauge) {
      let depth = 0;
      for (const l of watchedLedgers) depth += l.depth;
      this.set(depth);
    },
  }),
  makeHistogramProvider({
    name: 'gateway_ledger_flush_seconds',
    help: 'Ledger batch write latency, by result (ok, error)',
    labelNames: ['result'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  }),
  makeCounterProvider({ name: 'gateway_ledger_rows_written_total', help: 'Usage rows written to the ledger' }),
  makeCounterProvider({
    name: 'gateway_priced_requests_total',
    help: 'Finished requests by where their price came from (override, supplement, catalog, local, fallback, provider) and how the model matched it (exact, snapshot, vendor, alias, prefix, glob, none)',
    labelNames: ['source', 'match'],
  }),
  makeCounterProvider({
    name: 'gateway_unpriced_requests_total',
    help: 'Requests for a model without any price, by model and outcome (fallback: charged the default price; refused: UNKNOWN_MODEL_PRICING=refuse)',
    labelNames: ['model', 'outcome'],
  }),
  makeCounterProvider({
    name: 'gateway_translation_dropped_total',
    help: 'Request fields, tools and input items a chat-only provider could not be given (Responses→Chat translation), by field (e.g. tools:web_search, text.verbosity; a bounded set)',
    labelNames: ['field'],
  }),
  makeCounterProvider({
    name: 'gateway_websocket_upgrades_total',
    help: 'Responses WebSocket upgrades (Codex), by result: accepted, or the HTTP status that refused it',
    labelNames: ['result'],
  }),
  makeGaugeProvider({ name: 'gateway_websockets_open', help: 'Responses WebSockets open now' }),
];

export interface FinishedRequest {
  tenant: string;
  /** Already bounded: see `modelLabel`. */
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
  /** The gateway's error code, if any: a broken stream counts as an upstream error of its provider. */
  errorCode?: string | null;
}

/**
 * The model label: exact route names are configured, so they are safe; whatever a glob route (say `gpt-*`)
 * matched is user input, trusted only once an upstream served it (bounded by the provider's catalogue),
 * otherwise the route pattern stands in. No route at all is `unrouted`.
 */
export function modelLabel(requested: string | null, routePattern: string | undefined, served: boolean): string {
  if (routePattern === undefined) return 'unrouted';
  const glob = routePattern.includes('*') || routePattern.includes('?');
  if (!glob) return routePattern;
  return served && requested ? requested : routePattern;
}

/**
 * The gateway's metrics. Label values are bounded: tenant names, provider names and configured model
 * names only, never keys, request ids or free text. Other modules (limits, resilience) report through
 * the methods here rather than touching prom-client.
 */
@Injectable()
export class GatewayMetrics implements OnModuleDestroy {
  private readonly ledgers = new Set<WatchedLedger>();

  constructor(
    @InjectMetric('gateway_requests_total') private readonly requests: Counter,
    @InjectMetric('gateway_request_duration_seconds') private readonly duration: Histogram,
    @InjectMetric('gateway_time_to_first_byte_seconds') private readonly ttfb: Histogram,
    @InjectMetric('gateway_tokens_total') private readonly tokens: Counter,
    @InjectMetric('gateway_cost_usd_total') private readonly cost: Counter,
    @InjectMetric('gateway_upstream_attempts_total') private readonly attempts: Counter,
    @InjectMetric('gateway_upstream_errors_total') private readonly upstreamErrors: Counter,
    @InjectMetric('gateway_upstream_retries_total') private readonly retries: Counter,
    @InjectMetric('gateway_upstream_fallbacks_total') private readonly fallbacks: Counter,
    @InjectMetric('gateway_circuit_state') private readonly circuit: Gauge,
    @InjectMetric('gateway_rate_limited_total') private readonly rateLimits: Counter,
    @InjectMetric('gateway_budget_refusals_total') private readonly budgetRefusals: Counter,
    @InjectMetric('gateway_budget_utilisation_ratio') private readonly budgetRatio: Gauge,
    @InjectMetric('gateway_requests_in_flight') private readonly inFlight: Gauge,
    @InjectMetric('gateway_ledger_flush_seconds') private readonly ledgerFlush: Histogram,
    @InjectMetric('gateway_ledger_rows_written_total') private readonly ledgerRows: Counter,
    @InjectMetric('gateway_upstream_backoffs_total') private readonly backoffs: Counter,
    @InjectMetric('gateway_priced_requests_total') private readonly pricedRequests: Counter,
    @InjectMetric('gateway_unpriced_requests_total') private readonly unpricedRequests: Counter,
    @InjectMetric('gateway_translation_dropped_total') private readonly translationDrops?: Counter,
    @InjectMetric('gateway_websocket_upgrades_total') private readonly wsUpgrades?: Counter,
    @InjectMetric('gateway_websockets_open') private readonly wsOpen?: Gauge,
  ) {
    // Series that alerts take `increase()` of must exist at 0 before the first event, or the first burst is invisible.
    this.ledgerFlush.zero({ result: 'error' });
    this.ledgerFlush.zero({ result: 'ok' });
    this.ledgerRows.inc(0);
  }

  onModuleDestroy(): void {
    for (const l of this.ledgers) watchedLedgers.delete(l);
    this.ledgers.clear();
  }

  // ───────────────────────── requests (the data-plane pipeline) ─────────────────────────

  started(endpoint: string): void {
    this.inFlight.inc({ endpoint });
  }

  /** One served request's dropped fields (labels come from the translator's fixed vocabulary: bounded). */
  translationDropped(fields: readonly string[]): void {
    for (const field of fields) this.translationDrops?.inc({ field });
  }

  /** A Responses WebSocket upgrade: `accepted`, or the status of its refusal (a small fixed set). */
  websocketUpgrade(result: 'accepted' | number): void {
    this.wsUpgrades?.inc({ result: String(result) });
  }

  /** One more (+1) or one fewer (-1) open Responses WebSocket. */
  websocketOpen(delta: 1 | -1): void {
    this.wsOpen?.inc(delta);
  }

  finished(r: FinishedRequest): void {
    this.inFlight.dec({ endpoint: r.endpoint });
    const statusClass = `${Math.floor(r.status / 100)}xx`;
    this.requests.inc({ tenant: r.tenant, model: r.model, provider: r.provider, endpoint: r.endpoint, status_class: statusClass });
    const streamed = r.streamed ? 'true' : 'false';
    this.duration.observe({ tenant: r.tenant, endpoint: r.endpoint, provider: r.provider, streamed }, r.durationMs / 1000);
    if (r.ttfbMs !== null) this.ttfb.observe({ endpoint: r.endpoint, provider: r.provider, streamed }, r.ttfbMs / 1000);
    if (r.inputTokens) this.tokens.inc({ tenant: r.tenant, model: r.model, direction: 'input' }, r.inputTokens);
    if (r.outputTokens) this.tokens.inc({ tenant: r.tenant, model: r.model, direction: 'output' }, r.outputTokens);
    if (r.costUsd) this.cost.inc({ tenant: r.tenant, model: r.model }, r.costUsd);
    if (r.errorCode === 'stream_error' && r.provider !== 'none') this.upstreamErrors.inc({ provider: r.provider, reason: 'stream' });
  }

  // ───────────────────────── upstream (UpstreamDispatcher, circuit breaker) ─────────────────────────

  /** An attempt that got a usable (< 400) answer. */
  upstreamOk(provider: string): void {
    this.attempts.inc({ provider, result: 'ok' });
  }

  /**
   * A failed attempt; `reason` is bounded: `http_<status>`, `timeout`, `network`, or `circuit_open` / `backoff`
   * for a target skipped because its circuit is open or it is backed off (an error, but not an attempt: nothing was sent).
   */
  upstreamError(provider: string, reason: string): void {
    if (reason !== 'circuit_open' && reason !== 'backoff') this.attempts.inc({ provider, result: 'error' });
    this.upstreamErrors.inc({ provider, reason });
  }

  /** The dispatcher is about to try the same target again. */
  retry(provider: string): void {
    this.retries.inc({ provider });
  }

  /** The dispatcher gives up on `provider` and moves to the next target. */
  fallback(provider: string): void {
    this.fallbacks.inc({ provider });
  }

  /** This process backed a target off; `reason`: `rate_limit` or `quota`. */
  upstreamBackoff(provider: string, reason: string): void {
    this.backoffs.inc({ provider, reason });
  }

  /** `target` must be configured, e.g. `<provider>/<upstream model of the route target>`, never raw user input. */
  circuitState(provider: string, target: string, state: CircuitState): void {
    for (const s of CIRCUIT_STATES) this.circuit.set({ provider, target, state: s }, s === state ? 1 : 0);
  }

  // ───────────────────────── limits (LimitsService) ─────────────────────────

  /** A request refused by a rate limit; `kind`: `requests`, `tokens` or `concurrency`. */
  rateLimited(tenant: string, kind: string): void {
    this.rateLimits.inc({ tenant, kind });
  }

  /** A request refused because a budget is spent; `period`: `daily` or `monthly`. */
  budgetRefused(tenant: string, period: string): void {
    this.budgetRefusals.inc({ tenant, period });
  }

  /** Spent share of a tenant budget (0..1+), set whenever it changes; alerting fires above 0.8. */
  budgetUtilisation(tenant: string, period: string, ratio: number): void {
    this.budgetRatio.set({ tenant, period }, ratio);
  }

  // ───────────────────────── ledger (LedgerWriter) ─────────────────────────

  /** Reports the writer's queue depth at scrape time and each of its flushes. */
  watchLedger(ledger: WatchedLedger): void {
    ledger.onFlush = (rows, ms, error) => this.ledgerFlushed(rows, ms, error);
    this.ledgers.add(ledger);
    watchedLedgers.add(ledger);
  }

  ledgerFlushed(rows: number, ms: number, error?: Error): void {
    this.ledgerFlush.observe({ result: error ? 'error' : 'ok' }, ms / 1000);
    if (rows) this.ledgerRows.inc(rows);
  }

  // ───────────────────────── prices (PriceTable) ─────────────────────────

  /** Counts how finished requests were priced, and every request for a model without a price. */
  watchPrices(prices: WatchedPrices): void {
    prices.observer = {
      priced: (source, match) => this.pricedRequests.inc({ source, match }),
      unpriced: (model, outcome) => this.unpricedRequests.inc({ model, outcome }),
    };
  }
}
