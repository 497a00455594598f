import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { UsageRow } from './usage.repository';

/** A request sent upstream that had not finished when its process died: billed at its reservation with this code. */
export const GATEWAY_RESTARTED = 'gateway_restarted';
export const GATEWAY_RESTARTED_STATUS = 502;

/** What the journal knows of a request once it is dispatched upstream: enough to bill it if it never finishes. */
export interface SentRecord {
  requestId: string;
  clientRequestId: string | null;
  sessionId?: string | null;
  tenantId: string;
  keyId: string;
  routeId: string | null;
  providerId: string | null;
  endpoint: string;
  requestedModel: string | null;
  upstreamModel: string | null;
  streamed: boolean;
  startedAt: Date;
  /** The reservation (prompt estimate + max output, and its price): charged in full if the process dies. */
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** What the journals of dead processes hold. */
export interface Recovered {
  /** Finished rows (most already in Postgres: the ledger's insert skips those). */
  rows: UsageRow[];
  /** Requests sent upstream that never finished, as rows billed at their reservation (`gateway_restarted`). */
  orphans: UsageRow[];
  /** Deletes the recovered journals: call once their rows are in Postgres. */
  release(): void;
}

/**
 * A local, append-only record of usage that survives the process being killed: a synchronous `write()` per
 * record puts it in the page cache, which outlives the process (not the machine: no fsync per request).
 */
export interface UsageJournal {
  /** A request is being sent upstream (called once, on its first attempt). Synchronous. */
  sent(rec: SentRecord): void;
  /** A finished request's ledger row, before its response's last byte is written. Synchronous. */
  finished(row: UsageRow): void;
  /** The oldest `n` unconfirmed finished rows are in Postgres (or given up on): their segments can go. */
  confirm(n: number): void;
  /** Takes over the journals of dead processes (never a live one's) and reads them; undefined when there are none. */
  adoptDead(): Recovered | undefined;
}
export const USAGE_JOURNAL = Symbol('USAGE_JOURNAL');

const OWNER = 'owner.json';
const ADOPTED = 'adopted';
const SEGMENT = /^\d{8}\.jsonl$/;
/** The owner touches its `owner.json` this often. */
const HEARTBEAT_MS = 2_000;
/** A journal of another host (shared volume) is presumed dead after this long without a heartbeat. */
const STALE_MS = 15_000;
/** On this host, a journal whose pid is alive is only presumed dead (pid reused) after this long. */
const PID_REUSED_MS = 60_000;
/** Journals open in this process: tests and `npm start` run several apps in one process. */
const LIVE = new Set<string>();

interface Owner {
  host: string;
  pid: number;
  instance: string;
  startedAt: string;
}

export interface JournalStats {
  /** Records appended (sent + finished). */
  appended: number;
  /** Appends that failed (disk full, read-only): those rows still go to Postgres, unprotected against a crash. */
  failedWrites: number;
  /** Segments deleted once their rows were confirmed in Postgres. */
  checkpointed: number;
}

/**
 * One directory per process, `<journal dir>/<host>.<pid>.<random>/`, holding numbered segments of JSON lines
 * (`{"s":…}` sent, `{"f":…}` finished row) and an `owner.json` the owner touches every 2 s. A segment past
 * JOURNAL_SEGMENT_BYTES is closed (the requests still in flight are carried into the next one) and deleted
 * once the ledger confirms all of its rows; an idle, fully confirmed segment is truncated.
 *
 * Another process takes over a directory only when its owner is dead: same host and its pid gone (or the pid
 * is ours, as after a container restart, and it is not open in this process), or no heartbeat for 15 s
 * (another host on a shared volume; 60 s for a live pid, which was reused). Taking over is a `rename()` into
 * the taker's own `adopted/` folder, atomic, so exactly one process replays it; if that one dies too, its
 * adopted journals go with its own directory to the next.
 */
@Injectable()
export class FileUsageJournal implements UsageJournal, OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('UsageJournal');
  readonly instance = `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}.${process.pid}.${randomBytes(3).toString('hex')}`;
  readonly root: string;
  readonly dir: string;
  readonly stats: JournalStats = { appended: 0, failedWrites: 0, checkpointed: 0 };
  private fd = -1;
  private segNo = 0;
  private segBytes = 0;
  /** Closed segments, oldest first, with the count of finished rows recorded up to their end. */
  private closed: { path: string; end: number }[] = [];
  private finishedCount = 0;
  private confirmedCount = 0;
  /** The `sent` line of each request in flight, carried into every new segment until it finishes. */
  private readonly inFlight = new Map<string, string>();
  private heartbeat?: NodeJS.Timeout;
  private lastError = 0;

  constructor(@Inject(APP_CONFIG) private readonly cfg: AppConfig) {
    this.root = resolve(cfg.journalDir ?? join(cfg.dataDir, 'journal'));
    this.dir = join(this.root, this.instance);
  }

  onModuleInit(): void {
    try {
      mkdirSync(join(this.dir, ADOPTED), { recursive: true });
      const owner: Owner = { host: hostname(), pid: process.pid, instance: this.instance, startedAt: new Date().toISOString() };
      writeFileSync(join(this.dir, OWNER), JSON.stringify(owner));
      this.openSegment();
      LIVE.add(this.instance);
    } catch (e) {
      // The gateway still meters through Postgres; only the protection against a crash is gone.
      this.logger.error(`usage journal unavailable in ${this.dir}: ${(e as Error).message}; a killed gateway will lose its unwritten ledger rows`);
      return;
    }
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** After the ledger's shutdown flush: an empty journal is removed, one with unwritten rows stays for the next start. */
  onApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    LIVE.delete(this.instance);
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      /* closed already */
    }
    this.fd = -1;
    const pending = this.finishedCount - this.confirmedCount;
    let adopted = 0;
    try {
      adopted = readdirSync(join(this.dir, ADOPTED)).length;
    } catch {
      /* gone */
    }
    if (pending === 0 && this.inFlight.size === 0 && adopted === 0) {
      rmSync(this.dir, { recursive: true, force: true });
    } else {
      this.logger.warn(
        `journal ${this.dir} kept for replay: ${pending} row(s) not in Postgres, ${this.inFlight.size} request(s) unfinished, ${adopted} adopted journal(s)`,
      );
    }
  }

  sent(rec: SentRecord): void {
    const line = `{"s":${JSON.stringify(rec)}}\n`;
    this.inFlight.set(rec.requestId, line);
    this.append(line);
  }

  finished(row: UsageRow): void {
    this.finishedCount++;
    this.inFlight.delete(row.requestId);
    this.append(`{"f":${JSON.stringify(row)}}\n`);
  }

  confirm(n: number): void {
    this.confirmedCount = Math.min(this.finishedCount, this.confirmedCount + n);
    while (this.closed.length && this.closed[0].end <= this.confirmedCount) {
      const seg = this.closed.shift()!;
      try {
        unlinkSync(seg.path);
        this.stats.checkpointed++;
      } catch (e) {
        this.writeError(e);
      }
    }
    // Idle and all written: start the open segment over rather than let it grow.
    if (this.fd >= 0 && this.segBytes > 0 && !this.closed.length && this.confirmedCount === this.finishedCount && this.inFlight.size === 0) {
      try {
        ftruncateSync(this.fd, 0);
        this.segBytes = 0;
      } catch (e) {
        this.writeError(e);
      }
    }
  }

  adoptDead(): Recovered | undefined {
    if (this.fd < 0) return undefined;
    const adoptedDir = join(this.dir, ADOPTED);
    let names: string[] = [];
    try {
      names = readdirSync(this.root);
    } catch {
      return undefined;
    }
    for (const name of names) {
      if (name === this.instance) continue;
      const path = join(this.root, name);
      if (!isDeadJournal(path)) continue;
      try {
        renameSync(path, join(adoptedDir, name));
        this.logger.warn(`adopted the journal of a dead gateway process: ${name}`);
      } catch {
        /* another process took it first */
      }
    }
    const taken = readdirSync(adoptedDir).map((n) => join(adoptedDir, n));
    if (!taken.length) return undefined;
    const content = readJournals(taken);
    if (content.badLines) this.logger.warn(`${content.badLines} unreadable journal line(s) skipped (a write torn by the crash)`);
    const now = new Date();
    const orphans = [...content.sent.values()].filter((s) => !content.rows.has(s.requestId)).map((s) => orphanRow(s, now));
    return {
      rows: [...content.rows.values()],
      orphans,
      release: () => {
        for (const p of taken) rmSync(p, { recursive: true, force: true });
      },
    };
  }

  private append(line: string): void {
    if (this.fd < 0) return;
    try {
      const bytes = writeSync(this.fd, line);
      this.segBytes += bytes;
      this.stats.appended++;
    } catch (e) {
      this.writeError(e);
      return;
    }
    if (this.segBytes >= this.cfg.journalSegmentBytes) this.rotate();
  }

  private rotate(): void {
    try {
      closeSync(this.fd);
      // Never a stale descriptor: its number may be reused for another file.
      this.fd = -1;
      this.closed.push({ path: this.segmentPath(this.segNo), end: this.finishedCount });
      this.openSegment();
      for (const line of this.inFlight.values()) this.segBytes += writeSync(this.fd, line);
    } catch (e) {
      this.writeError(e);
    }
    this.confirm(0);
  }

  private openSegment(): void {
    this.segNo++;
    this.fd = openSync(this.segmentPath(this.segNo), 'a');
    this.segBytes = 0;
  }

  private segmentPath(n: number): string {
    return join(this.dir, `${String(n).padStart(8, '0')}.jsonl`);
  }

  private beat(): void {
    // A rotation that failed (disk full…) left no open segment: try again.
    if (this.fd < 0) return this.reopen(false);
    const now = new Date();
    try {
      utimesSync(join(this.dir, OWNER), now, now);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') return this.writeError(e);
      // Taken for dead's (this process stalled past the staleness limits): what was in it is being replayed
      // elsewhere; start a fresh journal so that from here on this process is covered again.
      this.logger.error(`journal ${this.dir} was taken over by another process while this one lives (stalled?); starting a new one`);
      this.reopen(true);
    }
  }

  /** A fresh segment (in a fresh directory if `lost`, whose closed segments went with it). */
  private reopen(lost: boolean): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        /* already gone */
      }
    }
    this.fd = -1;
    if (lost) this.closed = [];
    try {
      mkdirSync(join(this.dir, ADOPTED), { recursive: true });
      writeFileSync(
        join(this.dir, OWNER),
        JSON.stringify({ host: hostname(), pid: process.pid, instance: this.instance, startedAt: new Date().toISOString() } satisfies Owner),
      );
      this.openSegment();
      for (const line of this.inFlight.values()) this.segBytes += writeSync(this.fd, line);
    } catch (e) {
      this.writeError(e);
    }
  }

  private writeError(e: unknown): void {
    this.stats.failedWrites++;
    if (Date.now() - this.lastError < 10_000) return;
    this.lastError = Date.now();
    this.logger.error(`usage journal write failed in ${this.dir}: ${(e as Error).message}`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Whether the process that owned the journal directory `path` is gone (see FileUsageJournal). */
export function isDeadJournal(path: string): boolean {
  let owner: Owner | undefined;
  let mtime: number;
  try {
    if (!statSync(path).isDirectory()) return false;
    try {
      owner = JSON.parse(readFileSync(join(path, OWNER), 'utf8')) as Owner;
      mtime = statSync(join(path, OWNER)).mtimeMs;
    } catch {
      mtime = statSync(path).mtimeMs;
    }
  } catch {
    return false;
  }
  const age = Date.now() - mtime;
  if (owner?.host !== hostname()) return age > STALE_MS;
  if (owner.pid === process.pid) return !LIVE.has(owner.instance);
  return !pidAlive(owner.pid) || age > PID_REUSED_MS;
}

interface JournalContent {
  rows: Map<string, UsageRow>;
  sent: Map<string, SentRecord>;
  badLines: number;
}

/** Reads journal directories (their segments in order, then what they had adopted themselves). */
export function readJournals(dirs: string[], into: JournalContent = { rows: new Map(), sent: new Map(), badLines: 0 }): JournalContent {
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      if (!SEGMENT.test(name)) continue;
      for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const r = JSON.parse(line) as { s?: SentRecord; f?: UsageRow };
          if (r.f?.requestId) into.rows.set(r.f.requestId, { ...r.f, startedAt: new Date(r.f.startedAt), finishedAt: new Date(r.f.finishedAt) });
          else if (r.s?.requestId) into.sent.set(r.s.requestId, { ...r.s, startedAt: new Date(r.s.startedAt) });
          else into.badLines++;
        } catch {
          into.badLines++;
        }
      }
    }
    if (names.includes(ADOPTED)) {
      readJournals(
        readdirSync(join(dir, ADOPTED)).map((n) => join(dir, ADOPTED, n)),
        into,
      );
    }
  }
  return into;
}

/** A request that was sent upstream and never finished: billed at what it reserved. */
export function orphanRow(s: SentRecord, at: Date): UsageRow {
  return {
    requestId: s.requestId,
    clientRequestId: s.clientRequestId,
    sessionId: s.sessionId ?? null,
    tenantId: s.tenantId,
    keyId: s.keyId,
    routeId: s.routeId,
    providerId: s.providerId,
    endpoint: s.endpoint,
    requestedModel: s.requestedModel,
    upstreamModel: s.upstreamModel,
    status: GATEWAY_RESTARTED_STATUS,
    errorCode: GATEWAY_RESTARTED,
    inputTokens: s.inputTokens,
    outputTokens: s.outputTokens,
    cachedTokens: 0,
    costUsd: s.costUsd,
    latencyMs: null,
    ttfbMs: null,
    streamed: s.streamed,
    attempts: 1,
    startedAt: s.startedAt,
    finishedAt: at,
  };
}
