import { Injectable } from '@nestjs/common';
import { AuditEntryEntity } from '@gw/db';
import { AdminPrincipal } from './admin-principal';
import { AuditFilter, AuditRepository } from './audit.repository';
import { redactForAudit } from './audit.redact';

export interface AuditRecord {
  actor: AdminPrincipal | null;
  tenantId: string | null;
  action: string;
  objectType: string;
  objectId: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  ip: string | null;
  requestId: string | null;
}

@Injectable()
export class AuditService {
  constructor(private readonly audit: AuditRepository) {}

  /** Secrets are stripped here, whatever the caller passes. */
  async record(r: AuditRecord): Promise<void> {
    await this.audit.append({
      actorTokenId: r.actor?.tokenId ?? null,
      actorPrefix: r.actor?.prefix ?? null,
      actorRole: r.actor?.role ?? 'anonymous',
      tenantId: r.tenantId,
      action: r.action,
      objectType: r.objectType,
      objectId: r.objectId,
      before: r.before ? redactForAudit(r.before) : null,
      after: r.after ? redactForAudit(r.after) : null,
      ip: r.ip,
      requestId: r.requestId,
    });
  }

  /** Newest first. `tenantId` null = every tenant (root callers only). */
  list(tenantId: string | null, filter: AuditFilter): Promise<AuditEntryEntity[]> {
    return this.audit.list(tenantId, filter);
  }

  snapshot(table: string, id: string): Promise<Record<string, unknown> | null> {
    return this.audit.rowOf(table, id);
  }
}
