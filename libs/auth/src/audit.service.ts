import { Injectable } from '@nestjs/common';
import { AuditEntryEntity, AuditFilter, AuditRepository } from '@gw/db';
import { AdminPrincipal, TenantScope, readScope } from './admin-principal';
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

  /**
   * Newest first, what `actor` may see: root every entry (or one tenant's, with `tenantId`); a tenant's
   * admin the entries about its own tenant (another `tenantId` answers 404).
   */
  list(actor: AdminPrincipal, filter: AuditFilter & { tenantId?: string }): Promise<AuditEntryEntity[]> {
    const { tenantId, ...rest } = filter;
    return this.audit.list(readScope(actor, tenantId), rest);
  }

  snapshot(scope: TenantScope, table: string, id: string): Promise<Record<string, unknown> | null> {
    return this.audit.rowOf(scope, table, id);
  }
}
