import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { AuditEntryEntity } from './entities';

/** Whose entries a read sees: one tenant's, or every tenant's (root callers only). */
export type AuditScope = { tenantId: string } | 'all';

export interface AuditFilter {
  /** Exact action, or a prefix ending in `*` (`key.*`). */
  action?: string;
  objectType?: string;
  objectId?: string;
  actorTokenId?: string;
  from?: Date;
  to?: Date;
  /** Entries with a smaller id than this (paging backwards). */
  beforeId?: string;
  limit: number;
}

const TABLE = /^[a-z_]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The audit log (`audit_log`). Append-only. Reads take their scope first: one tenant's rows, or `'all'` (root
 * callers only). Here rather than in libs/auth because the admin API (auth's `AuditService`) is not its only
 * writer: the master-key rotation (libs/providers) records itself too.
 */
@Injectable()
export class AuditRepository {
  constructor(@InjectRepository(AuditEntryEntity) private readonly repo: Repository<AuditEntryEntity>) {}

  /** Whether the table exists (a tool run against a database not migrated that far writes no entry). */
  async exists(): Promise<boolean> {
    const [{ present }]: { present: boolean }[] = await this.repo.query(`SELECT to_regclass('audit_log') IS NOT NULL AS present`);
    return present;
  }

  async append(entry: Partial<AuditEntryEntity>): Promise<void> {
    await this.repo.insert(entry as Parameters<Repository<AuditEntryEntity>['insert']>[0]);
  }

  list(scope: AuditScope, f: AuditFilter): Promise<AuditEntryEntity[]> {
    const q = this.repo.createQueryBuilder('a');
    if (scope !== 'all') q.andWhere('a.tenant_id = :tenantId', { tenantId: scope.tenantId });
    if (f.action?.endsWith('*')) q.andWhere('a.action LIKE :action', { action: f.action.slice(0, -1).replace(/[\\%_]/g, '\\$&') + '%' });
    else if (f.action) q.andWhere('a.action = :action', { action: f.action });
    if (f.objectType) q.andWhere('a.object_type = :objectType', { objectType: f.objectType });
    if (f.objectId) q.andWhere('a.object_id = :objectId', { objectId: f.objectId });
    if (f.actorTokenId) q.andWhere('a.actor_token_id = :actorTokenId', { actorTokenId: f.actorTokenId });
    if (f.from) q.andWhere('a.at >= :from', { from: f.from });
    if (f.to) q.andWhere('a.at < :to', { to: f.to });
    if (f.beforeId) q.andWhere('a.id < :beforeId', { beforeId: f.beforeId });
    return q.orderBy('a.id', 'DESC').limit(f.limit).getMany();
  }

  /**
   * One row of an admin table as stored, for before/after snapshots, if it is in `scope`: a tenant's
   * scope sees its own tenant's row (`tenants`) and rows whose `tenant_id` is that tenant, nothing else.
   * `table` comes from controller metadata (code), never from the request; ids that are not UUIDs cannot name a row.
   */
  async rowOf(scope: AuditScope, table: string, id: string): Promise<Record<string, unknown> | null> {
    if (!TABLE.test(table) || !UUID.test(id)) return null;
    const rows: { row: Record<string, unknown> }[] = await this.repo.query(`SELECT row_to_json(t) AS row FROM ${table} t WHERE t.id = $1`, [id]);
    const row = rows[0]?.row ?? null;
    if (!row || scope === 'all') return row;
    const owner = table === 'tenants' ? row.id : row.tenant_id;
    return owner === scope.tenantId ? row : null;
  }
}
