import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { GatewayMetrics, modelLabel } from './gateway.metrics';

describe('modelLabel', () => {
  it('is `unrouted` without a route, the route name for an exact route', () => {
    expect(modelLabel('whatever-the-user-typed', undefined, false)).toBe('unrouted');
    expect(modelLabel('gpt-4o-mini', 'gpt-4o-mini', false)).toBe('gpt-4o-mini');
  });

  it('for a glob route, trusts the requested name only once an upstream served it', () => {
    expect(modelLabel('vendor/made-up', 'vendor/*', false)).toBe('vendor/*');
    expect(modelLabel('vendor/real', 'vendor/*', true)).toBe('vendor/real');
    expect(modelLabel('gpt-4o', 'gpt-4?', true)).toBe('gpt-4o');
    expect(modelLabel(null, '*', true)).toBe('*');
  });
});

describe('GatewayMetrics', () => {
  const registry = new Registry();
  const c = (name: string, labelNames: string[] = []) => new Counter({ name, help: name, labelNames, registers: [registry] });
  const g = (name: string, labelNames: string[] = []) => new Gauge({ name, help: name, labelNames, registers: [registry] });
  const h = (name: string, labelNames: string[] = []) => new Histogram({ name, help: name, labelNames, registers: [registry] });
  const metrics = new GatewayMetrics(
    c('requests', ['tenant', 'model', 'provider', 'endpoint', 'status_class']),
    h('duration', ['tenant', 'endpoint', 'provider', 'streamed']),
    h('ttfb', ['endpoint', 'provider', 'streamed']),
    c('tokens', ['tenant', 'model', 'direction']),
    c('cost', ['tenant', 'model']),
    c('attempts', ['provider', 'result']),
    c('errors', ['provider', 'reason']),
    c('retries', ['provider']),
    c('fallbacks', ['provider']),
    g('circuit', ['provider', 'target', 'state']),
    c('rate_limited', ['tenant', 'kind']),
    c('budget_refusals', ['tenant', 'period']),
    g('budget_ratio', ['tenant', 'period']),
    g('in_flight', ['endpoint']),
    h('flush', ['result']),
    c('rows'),
    c('backoffs', ['provider', 'reason']),
    c('priced', ['source', 'match']),
    c('unpriced', ['model', 'outcome']),
    c('translation_dropped', ['field']),
  );
  /** Sum of a metric's samples with these labels; `flush_count` style names read a histogram's count. */
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const base = registry.getSingleMetric(name) ? name : name.replace(/_count$/, '');
    const all = (await registry.getSingleMetric(base)!.get()).values as { value: number; labels: Record<string, unknown>; metricName?: string }[];
    const m = all.filter((v) => (v.metricName ?? base) === name && Object.entries(labels).every(([k, x]) => v.labels[k] === x));
    return m.reduce((s, v) => s + v.value, 0);
  };

  it('counts what a translation dropped, by field', async () => {
    metrics.translationDropped(['tools:web_search', 'text.verbosity']);
    metrics.translationDropped(['tools:web_search']);
    expect(await value('translation_dropped', { field: 'tools:web_search' })).toBe(2);
    expect(await value('translation_dropped', { field: 'text.verbosity' })).toBe(1);
  });

  it('counts priced and unpriced requests through the observer it gives a price table', async () => {
    const table: { observer?: { priced(s: string, m: string): void; unpriced(m: string, o: 'fallback' | 'refused'): void } } = {};
    metrics.watchPrices(table);
    table.observer!.priced('catalog', 'exact');
    table.observer!.priced('catalog', 'exact');
    table.observer!.unpriced('llama3', 'refused');
    expect(await value('priced', { source: 'catalog', match: 'exact' })).toBe(2);
    expect(await value('unpriced', { model: 'llama3', outcome: 'refused' })).toBe(1);
  });

  it('exports circuit state one-hot', async () => {
    metrics.circuitState('p', 'p/m', 'open');
    expect(await value('circuit', { state: 'open' })).toBe(1);
    expect(await value('circuit', { state: 'closed' })).toBe(0);
    metrics.circuitState('p', 'p/m', 'closed');
    expect(await value('circuit', { state: 'open' })).toBe(0);
    expect(await value('circuit', { state: 'closed' })).toBe(1);
    expect(await value('circuit', { state: 'half_open' })).toBe(0);
  });

  it('counts attempts by result, fallbacks, and errors by reason', async () => {
    metrics.upstreamOk('p');
    metrics.fallback('p');
    metrics.upstreamError('p', 'http_503');
    expect(await value('attempts', { provider: 'p', result: 'ok' })).toBe(1);
    expect(await value('attempts', { provider: 'p', result: 'error' })).toBe(1);
    expect(await value('fallbacks', { provider: 'p' })).toBe(1);
    expect(await value('errors', { provider: 'p', reason: 'http_503' })).toBe(1);
  });

  it('counts a skipped open circuit as an error but not as an attempt', async () => {
    metrics.upstreamError('q', 'circuit_open');
    expect(await value('errors', { provider: 'q', reason: 'circuit_open' })).toBe(1);
    expect(await value('attempts', { provider: 'q' })).toBe(0);
  });

  it('reports every flush of the watched writer: rows written, latency by result', async () => {
    const ledger: { depth: number; onFlush?: (rows: number, ms: number, error?: Error) => void } = { depth: 3 };
    metrics.watchLedger(ledger);
    ledger.onFlush!(5, 12);
    ledger.onFlush!(0, 3, new Error('down'));
    expect(await value('rows')).toBe(5);
    expect(await value('flush_count', { result: 'error' })).toBe(1);
    expect(await value('flush_count', { result: 'ok' })).toBe(1);
    metrics.onModuleDestroy();
  });
});
