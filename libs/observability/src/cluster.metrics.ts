import cluster from 'node:cluster';
import { AggregatorRegistry, register } from 'prom-client';

/**
 * `/metrics` of a gateway running several workers (GATEWAY_WORKERS, node:cluster): whichever worker gets the
 * scrape asks the primary, which collects every worker's registry over IPC and answers the aggregate, so one
 * scrape shows the whole process group once. The primary holds no metrics of its own.
 */

/** A metric as `Registry.getMetricsAsJSON()` gives it (prom-client does not export the type). */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

/** Worker → primary: render the aggregate for me. Primary → worker: here it is. */
export const METRICS_SCRAPE = 'gw:metrics:scrape';
export const METRICS_SCRAPED = 'gw:metrics:scraped';
/** Primary → worker: your registry, please. Worker → primary: here it is. */
export const METRICS_COLLECT = 'gw:metrics:collect';
export const METRICS_SNAPSHOT = 'gw:metrics:snapshot';

export interface ClusterMetricsMessage {
  type: string;
  id: number;
  text?: string;
  error?: string;
  metrics?: MetricJson[];
}

export function isClusterMetricsMessage(m: unknown): m is ClusterMetricsMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('gw:metrics:');
}

// ───────────────────────── worker side ─────────────────────────

/** How long a worker waits for the primary's aggregate before the scrape fails (503). */
export const SCRAPE_TIMEOUT_MS = 10_000;

let answering = false;
let nextScrape = 0;
const scrapes = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

/** Whether this process is a worker of a gateway cluster (its `/metrics` must be aggregated by the primary). */
export function inClusterWorker(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

/** In a worker: answers the primary's collections with this registry, and routes its aggregates back to scrapes. */
export function answerClusterMetrics(): void {
  if (answering || !inClusterWorker()) return;
  answering = true;
  process.on('message', (m: unknown) => {
    if (!isClusterMetricsMessage(m)) return;
    if (m.type === METRICS_COLLECT) {
      register
        .getMetricsAsJSON()
        .then((metrics) => process.send?.({ type: METRICS_SNAPSHOT, id: m.id, metrics }))
        .catch((e: unknown) => process.send?.({ type: METRICS_SNAPSHOT, id: m.id, error: (e as Error).message }));
    } else if (m.type === METRICS_SCRAPED) {
      const s = scrapes.get(m.id);
      if (!s) return;
      scrapes.delete(m.id);
      clearTimeout(s.timer);
      if (m.text !== undefined) s.resolve(m.text);
      else s.reject(new Error(m.error ?? 'no metrics'));
    }
  });
}

/** In a worker: the whole gateway's metrics (every worker's, aggregated by the primary). */
export function scrapeThroughPrimary(timeoutMs = SCRAPE_TIMEOUT_MS): Promise<string> {
  answerClusterMetrics();
  const id = nextScrape++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      scrapes.delete(id);
      reject(new Error(`the cluster primary did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    scrapes.set(id, { resolve, reject, timer });
    process.send!({ type: METRICS_SCRAPE, id });
  });
}

// ───────────────────────── primary side ─────────────────────────

/** Process metrics (prom-client's defaults) stay per worker, under a `worker` label: memory, CPU, event-loop lag. */
export function isPerWorkerMetric(name: string): boolean {
  return name.startsWith('process_') || name.startsWith('nodejs_');
}

/** What the primary needs of a worker: its slot (1…N, kept across restarts) and a way to message it. */
export interface MetricsSource {
  slot: number;
  send(message: ClusterMetricsMessage): void;
}

/** How long the primary waits for a worker's registry; a slower worker is shown as of its last answer. */
export const COLLECT_TIMEOUT_MS = 2_000;

/**
 * The primary's side: collects the workers' registries and sums them (counters, histograms, gauges such as
 * in-flight requests; gauges declared with another prom-client `aggregator`, e.g. `max`, use it), except
 * process metrics, which keep one series per worker (`worker` label).
 *
 * Counters never go down across a worker's death: what an exited worker had counted at its last collection
 * stays in the sum (`retire`), and its restarted successor counts from 0 on top. So Prometheus sees no reset.
 * A worker killed outright loses what it counted since the last scrape (the ledger loses nothing: journal).
 */
export class ClusterMetricsAggregator {
  private readonly last = new Map<number, MetricJson[]>();
  private retired: MetricJson[] = [];
  private readonly pending = new Map<number, { waiting: Set<number>; done: () => void }>();
  private nextId = 0;
  restarts = 0;

  constructor(private readonly timeoutMs = COLLECT_TIMEOUT_MS) {}

  /** Collects from every live worker (up to the timeout), then renders the aggregate in Prometheus text format. */
  async scrape(workers: MetricsSource[]): Promise<string> {
    const id = this.nextId++;
    await new Promise<void>((resolve) => {
      const waiting = new Set(workers.map((w) => w.slot));
      const timer = setTimeout(finish, this.timeoutMs);
      const pending = this.pending;
      function finish() {
        clearTimeout(timer);
        pending.delete(id);
        resolve();
      }
      this.pending.set(id, { waiting, done: finish });
      for (const w of workers) {
        try {
          w.send({ type: METRICS_COLLECT, id });
        } catch {
          waiting.delete(w.slot);
        }
      }
      if (!waiting.size) finish();
    });
    return this.render(workers.map((w) => w.slot));
  }

  /** A worker's answer to a collection. */
  received(slot: number, m: ClusterMetricsMessage): void {
    if (m.type !== METRICS_SNAPSHOT) return;
    if (m.metrics) this.last.set(slot, m.metrics);
    const p = this.pending.get(m.id);
    if (!p) return;
    p.waiting.delete(slot);
    if (!p.waiting.size) p.done();
  }

  /** A worker exited: its counters and histograms, as last collected, stay in the sums. */
  retire(slot: number): void {
    const snapshot = this.last.get(slot);
    this.last.delete(slot);
    if (!snapshot) return;
    const kept = snapshot.filter((m) => (m.type === 'counter' || m.type === 'histogram') && !isPerWorkerMetric(m.name));
    this.retired = aggregateJson([this.retired, kept]);
  }

  /** The aggregate of the given live workers' last snapshots, the retired counters and the cluster's own metrics. */
  render(live: number[]): Promise<string> {
    const parts: MetricJson[][] = [this.retired];
    const perWorkerRequests: MetricJson = {
      name: 'gateway_worker_requests_total',
      help: 'Requests that passed authentication, by worker (event loop) that served them: the balance across workers; restarts from 0 with its worker',
      type: 'counter',
      aggregator: 'sum',
      values: [],
    };
    for (const slot of live) {
      const snapshot = this.last.get(slot);
      if (!snapshot) continue;
      parts.push(snapshot.map((m) => (isPerWorkerMetric(m.name) ? labelled(m, slot) : m)));
      const requests = snapshot.find((m) => m.name === 'gateway_requests_total');
      perWorkerRequests.values.push({ value: requests?.values.reduce((s, v) => s + v.value, 0) ?? 0, labels: { worker: slot } });
    }
    parts.push([
      perWorkerRequests,
      {
        name: 'gateway_workers',
        help: 'Worker event loops running (GATEWAY_WORKERS when all are up)',
        type: 'gauge',
        aggregator: 'sum',
        values: [{ value: live.length, labels: {} }],
      },
      {
        name: 'gateway_worker_restarts_total',
        help: 'Workers that exited unexpectedly and were restarted by the primary',
        type: 'counter',
        aggregator: 'sum',
        values: [{ value: this.restarts, labels: {} }],
      },
    ]);
    return AggregatorRegistry.aggregate(parts).metrics();
  }
}

function labelled(m: MetricJson, slot: number): MetricJson {
  // Label sets of different workers are disjoint: `first` keeps each series as it is.
  return { ...m, aggregator: 'first', values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker: slot } })) };
}

/** prom-client's aggregation, kept as JSON (its aggregated metrics are plain objects with their values). */
function aggregateJson(parts: MetricJson[][]): MetricJson[] {
  return AggregatorRegistry.aggregate(parts as never)
    .getMetricsAsArray()
    .map((m) => {
      const j = m as unknown as MetricJson;
      return { name: j.name, help: j.help, type: j.type, aggregator: j.aggregator, values: j.values };
    });
}
