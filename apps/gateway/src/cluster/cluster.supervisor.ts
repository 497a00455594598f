import cluster, { Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import pino, { Logger as PinoLogger } from 'pino';
import { AppConfig, DEFAULT_DATABASE_POOL_SIZE, parseConfig } from '@gw/config';
import { ClusterMetricsAggregator, METRICS_SCRAPE, METRICS_SCRAPED, isClusterMetricsMessage } from '@gw/observability';
import { restartDelayMs } from './restart.backoff';

/** The worker's slot (1…N), kept by its restarted successor: the `worker` label of per-worker metrics. */
export const WORKER_ID_ENV = 'GATEWAY_WORKER_ID';
/** Copies of one signal this close together are one event delivered by several paths (as installGracefulShutdown). */
const DUPLICATE_SIGNAL_MS = 1_000;

interface Slot {
  id: number;
  worker?: Worker;
  /** The worker of this slot has listened once: start-up is over for it. */
  listened: boolean;
  startedAt: number;
  /** Unexpected exits in a row of workers that lived less than a minute: the restart delay grows with them. */
  failures: number;
  restart?: NodeJS.Timeout;
}

/**
 * When GATEWAY_WORKERS > 1, this process becomes the cluster primary: it forks the workers (each runs the
 * whole gateway app; node:cluster shares the port and hands connections out round-robin), restarts one that
 * dies (with backoff), forwards SIGTERM/SIGINT so that each drains and flushes its own ledger, aggregates
 * their `/metrics`, and exits once all have exited. Returns false where the caller should run the app itself.
 */
export function superviseWorkersIfPrimary(given: AppConfig, envFile = '.env'): boolean {
  if (!cluster.isPrimary) return false;
  // `.env` is read by the app's ConfigModule, too late for this choice: read it now (the environment wins, as there).
  const cfg = existsSync(envFile) ? (process.loadEnvFile(envFile), parseConfig()) : given;
  if (cfg.gatewayWorkers <= 1) return false;
  new ClusterSupervisor(cfg.gatewayWorkers, rootLogger(cfg), workerEnv(cfg.gatewayWorkers)).start();
  return true;
}

/**
 * Unless DATABASE_POOL_SIZE is set, the workers share the default pool of one process instead of each taking
 * it whole: the gateway's queries are few (ledger batches, cache reloads, the config poll, journal replays), and
 * workers × replicas × 10 would soon pass PostgreSQL's max_connections (100 by default). See docs/operations.md.
 */
export function workerEnv(workers: number, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.DATABASE_POOL_SIZE?.trim()) return {};
  return { DATABASE_POOL_SIZE: String(workerPoolSize(workers)) };
}

export function workerPoolSize(workers: number): number {
  return Math.max(2, Math.ceil(DEFAULT_DATABASE_POOL_SIZE / workers));
}

function rootLogger(cfg: AppConfig): PinoLogger {
  // The same JSON lines as the workers' (request-log.config.ts).
  return pino({ level: cfg.logLevel, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, process.stdout).child({
    context: 'Cluster',
  });
}

export class ClusterSupervisor {
  private readonly slots: Slot[];
  private readonly metrics = new ClusterMetricsAggregator();
  private stopping = false;
  private startedUp = false;
  private failed = false;
  private readonly lastSignal: Record<string, number> = {};

  constructor(
    private readonly count: number,
    private readonly log: PinoLogger,
    private readonly env: Record<string, string> = {},
  ) {
    this.slots = Array.from({ length: count }, (_, i) => ({ id: i + 1, listened: false, startedAt: 0, failures: 0 }));
  }

  start(): void {
    const pool = this.env.DATABASE_POOL_SIZE ? `, ${this.env.DATABASE_POOL_SIZE} database connections each at most` : '';
    this.log.info(`starting ${this.count} gateway workers (GATEWAY_WORKERS)${pool}, primary pid ${process.pid}`);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => this.signal(sig));
    for (const slot of this.slots) this.fork(slot);
  }

  private live(): { slot: Slot; worker: Worker }[] {
    return this.slots.filter((s) => s.worker?.isConnected()).map((s) => ({ slot: s, worker: s.worker! }));
  }

  private fork(slot: Slot): void {
    slot.restart = undefined;
    slot.listened = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ ...this.env, [WORKER_ID_ENV]: String(slot.id) });
    slot.worker = worker;
    worker.on('listening', () => {
      slot.listened = true;
      this.log.info(`worker ${slot.id} (pid ${worker.process.pid}) listening`);
      if (!this.startedUp && this.slots.every((s) => s.listened)) {
        this.startedUp = true;
        this.log.info(`all ${this.count} workers listening`);
      }
    });
    worker.on('message', (m: unknown) => this.message(slot, worker, m));
    // A message to a worker whose channel just closed fails here; its 'exit' follows. Unhandled, it would end the primary.
    worker.on('error', (e: Error) => this.log.warn(`worker ${slot.id} (pid ${worker.process.pid}): ${e.message}`));
    worker.on('exit', (code, signal) => this.exited(slot, worker, code, signal));
  }

  private message(slot: Slot, worker: Worker, m: unknown): void {
    if (!isClusterMetricsMessage(m)) return;
    if (m.type !== METRICS_SCRAPE) return this.metrics.received(slot.id, m);
    const sources = this.live().map(({ slot: s, worker: w }) => ({ slot: s.id, send: (msg: object) => w.send(msg) }));
    void this.metrics
      .scrape(sources)
      .then((text) => ({ type: METRICS_SCRAPED, id: m.id, text }))
      .catch((e: unknown) => ({ type: METRICS_SCRAPED, id: m.id, error: (e as Error).message }))
      .then((answer) => {
        if (worker.isConnected()) worker.send(answer);
      });
  }

  private exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    this.metrics.retire(slot.id);
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (this.stopping) {
      if (code !== 0) this.failed = true;
      this.log.info(`worker ${slot.id} (pid ${worker.process.pid}) ${how}`);
      return this.exitWhenAllGone();
    }
    if (!this.startedUp) {
      // As a single-process gateway that fails to start: exit, and let the orchestrator say so and retry.
      this.log.error(`worker ${slot.id} (pid ${worker.process.pid}) ${how} before the gateway started: stopping the others and exiting`);
      this.stopping = this.failed = true;
      for (const { worker: w } of this.live()) w.process.kill('SIGTERM');
      return this.exitWhenAllGone();
    }
    slot.failures = Date.now() - slot.startedAt < 60_000 ? slot.failures + 1 : 1;
    const delay = restartDelayMs(slot.failures);
    this.metrics.restarts++;
    this.log.error(
      `worker ${slot.id} (pid ${worker.process.pid}) ${how}: restarting it in ${delay} ms; its journal is replayed by a sibling or by its successor`,
    );
    slot.restart = setTimeout(() => this.fork(slot), delay);
  }

  /**
   * SIGTERM/SIGINT: every worker drains and flushes its ledger (installGracefulShutdown in each), and the
   * primary exits when the last has exited. Copies of one signal within a second (Ctrl-C reaches the workers
   * too, systemd signals the whole group) are forwarded once; a later one is forwarded again, so the
   * workers' own rules hold: a second is ignored while they drain, a third forces them out.
   */
  private signal(sig: 'SIGTERM' | 'SIGINT'): void {
    const now = Date.now();
    if (now - (this.lastSignal[sig] ?? 0) < DUPLICATE_SIGNAL_MS) return;
    this.lastSignal[sig] = now;
    if (!this.stopping) {
      this.stopping = true;
      this.log.info(`${sig}: draining ${this.live().length} worker(s)`);
      for (const s of this.slots) if (s.restart) clearTimeout(s.restart);
    }
    for (const { worker } of this.live()) worker.process.kill(sig);
    this.exitWhenAllGone();
  }

  private exitWhenAllGone(): void {
    if (this.slots.some((s) => s.worker)) return;
    this.log.info(this.failed ? 'all workers have exited, some with an error' : 'all workers have exited');
    process.exit(this.failed ? 1 : 0);
  }
}
