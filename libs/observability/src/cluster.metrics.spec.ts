import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ClusterMetricsAggregator, ClusterMetricsMessage, METRICS_COLLECT, METRICS_SNAPSHOT, MetricJson } from './cluster.metrics';

/** One worker's registry: what a gateway worker would hold. */
function workerRegistry() {
  const registry = new Registry();
  const requests = new Counter({ name: 'gateway_requests_total', help: 'h', labelNames: ['tenant'], registers: [registry] });
  const duration = new Histogram({ name: 'gateway_request_duration_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] });
  const inFlight = new Gauge({ name: 'gateway_requests_in_flight', help: 'h', registers: [registry] });
  const ratio = new Gauge({ name: 'gateway_budget_utilisation_ratio', help: 'h', labelNames: ['tenant'], aggregator: 'max', registers: [registry] });
  const rss = new Gauge({ name: 'process_resident_memory_bytes', help: 'h', registers: [registry] });
  return { registry, requests, duration, inFlight, ratio, rss };
}
type Worker = ReturnType<typeof workerRegistry>;

/** A live worker as the primary sees it: answers collections from its registry, unless `mute`. */
function source(agg: ClusterMetricsAggregator, slot: number, w: Worker, mute = () => false) {
  return {
    slot,
    send(m: ClusterMetricsMessage) {
      expect(m.type).toBe(METRICS_COLLECT);
      if (mute()) return;
      // A copy, as IPC delivers it (prom-client's values are its live objects).
      void w.registry
        .getMetricsAsJSON()
        .then((metrics) => agg.received(slot, { type: METRICS_SNAPSHOT, id: m.id, metrics: structuredClone(metrics) as unknown as MetricJson[] }));
    },
  };
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('ClusterMetricsAggregator (the primary of GATEWAY_WORKERS)', () => {
  it('sums counters, histograms and gauges across workers once; `max` gauges take the max; process metrics stay per worker', async () => {
    const agg = new ClusterMetricsAggregator(1_000);
    const [a, b] = [workerRegistry(), workerRegistry()];
    a.requests.inc({ tenant: 't' }, 3);
    b.requests.inc({ tenant: 't' }, 4);
    b.requests.inc({ tenant: 'u' }, 1);
    a.duration.observe(0.05);
    b.duration.observe(0.5);
    b.duration.observe(5);
    a.inFlight.set(2);
    b.inFlight.set(1);
    a.ratio.set({ tenant: 't' }, 0.4);
    b.ratio.set({ tenant: 't' }, 0.6);
    a.rss.set(100);
    b.rss.set(200);
    const text = await agg.scrape([source(agg, 1, a), source(agg, 2, b)]);
    expect(value(text, 'gateway_requests_total{tenant="t"}')).toBe(7);
    expect(value(text, 'gateway_requests_total{tenant="u"}')).toBe(1);
    expect(value(text, 'gateway_request_duration_seconds_count')).toBe(3);
    expect(value(text, 'gateway_request_duration_seconds_bucket{le="0.1"}')).toBe(1);
    expect(value(text, 'gateway_request_duration_seconds_bucket{le="1"}')).toBe(2);
    expect(value(text, 'gateway_request_duration_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(value(text, 'gateway_request_duration_seconds_sum')).toBeCloseTo(5.55);
    expect(value(text, 'gateway_requests_in_flight')).toBe(3);
    expect(value(text, 'gateway_budget_utilisation_ratio{tenant="t"}')).toBe(0.6);
    expect(value(text, 'process_resident_memory_bytes{worker="1"}')).toBe(100);
    expect(value(text, 'process_resident_memory_bytes{worker="2"}')).toBe(200);
    expect(value(text, 'gateway_worker_requests_total{worker="1"}')).toBe(3);
    expect(value(text, 'gateway_worker_requests_total{worker="2"}')).toBe(5);
    expect(value(text, 'gateway_workers')).toBe(2);
    // each metric once
    expect(text.match(/^# TYPE gateway_requests_total /gm)).toHaveLength(1);
  });

  it("keeps an exited worker's counters in the sums (no counter reset), but not its gauges or process metrics", async () => {
    const agg = new ClusterMetricsAggregator(1_000);
    const [a, b] = [workerRegistry(), workerRegistry()];
    a.requests.inc({ tenant: 't' }, 10);
    b.requests.inc({ tenant: 't' }, 5);
    a.inFlight.set(4);
    a.rss.set(100);
    await agg.scrape([source(agg, 1, a), source(agg, 2, b)]);
    // worker 1 dies; its successor starts from 0 and serves 2 more
    agg.retire(1);
    agg.restarts++;
    const successor = workerRegistry();
    successor.requests.inc({ tenant: 't' }, 2);
    const text = await agg.scrape([source(agg, 1, successor), source(agg, 2, b)]);
    expect(value(text, 'gateway_requests_total{tenant="t"}')).toBe(17);
    expect(value(text, 'gateway_requests_in_flight')).toBe(0);
    expect(value(text, 'process_resident_memory_bytes{worker="1"}')).toBe(0);
    expect(value(text, 'gateway_worker_restarts_total')).toBe(1);
    // retiring twice (two deaths) keeps adding
    agg.retire(1);
    const third = workerRegistry();
    third.requests.inc({ tenant: 't' }, 1);
    expect(value(await agg.scrape([source(agg, 1, third), source(agg, 2, b)]), 'gateway_requests_total{tenant="t"}')).toBe(18);
  });

  it('a worker that does not answer in time is shown as of its last answer, never left out of the sums', async () => {
    const agg = new ClusterMetricsAggregator(100);
    const [a, b] = [workerRegistry(), workerRegistry()];
    a.requests.inc({ tenant: 't' }, 1);
    b.requests.inc({ tenant: 't' }, 2);
    let muted = false;
    await agg.scrape([source(agg, 1, a), source(agg, 2, b, () => muted)]);
    muted = true;
    a.requests.inc({ tenant: 't' }, 1);
    b.requests.inc({ tenant: 't' }, 100);
    const text = await agg.scrape([source(agg, 1, a), source(agg, 2, b, () => muted)]);
    expect(value(text, 'gateway_requests_total{tenant="t"}')).toBe(4);
  });
});
