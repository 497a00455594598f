import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * Advisory lock ids (one namespace per database). `7_346_113` is the migration runner's, taken on its own
 * connection before Nest is up (migration.runner.ts), so it is not listed here.
 */
export enum DatabaseLock {
  /** Registering providers and default routes from the environment (gateway replicas starting together). */
  EnvProviders = 7_346_114,
}

/** The database as a whole, not one table: reachability for readiness probes, and advisory locks. */
@Injectable()
export class DatabaseRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Resolves when the database answers a trivial query; rejects with its error otherwise. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  /**
   * Runs `fn` holding a session advisory lock on a connection of its own, so that processes doing the same
   * thing at the same time take turns; the lock is released (best effort: a lost connection drops it anyway)
   * whatever `fn` does.
   */
  async withLock<T>(lock: DatabaseLock, fn: () => Promise<T>): Promise<T> {
    const qr = this.dataSource.createQueryRunner();
    await qr.connect();
    try {
      await qr.query('SELECT pg_advisory_lock($1)', [lock]);
      return await fn();
    } finally {
      await qr.query('SELECT pg_advisory_unlock($1)', [lock]).catch(() => undefined);
      await qr.release();
    }
  }
}
