import type { AdminRole } from '@gw/db';
import { Errors } from '@gw/common';
import { tenantNotFound } from '@gw/tenancy';

export type { AdminRole } from '@gw/db';

/** Who is calling the admin API: set on `req.user` by the admin strategy. */
export interface AdminPrincipal {
  role: AdminRole;
  /** null for root (every tenant); otherwise the one tenant this token may see. */
  tenantId: string | null;
  /** Row id in admin_tokens; null for the bootstrap root token (ADMIN_TOKEN or the generated one). */
  tokenId: string | null;
  /** What the audit log shows for the actor: the token's visible prefix, or `ADMIN_TOKEN`. */
  prefix: string;
}

export const BOOTSTRAP_ROOT: AdminPrincipal = Object.freeze({ role: 'root', tenantId: null, tokenId: null, prefix: 'ADMIN_TOKEN' });

export function isAdminPrincipal(u: unknown): u is AdminPrincipal {
  return !!u && typeof u === 'object' && 'role' in u && 'tokenId' in u && 'prefix' in u;
}

/** The admin API lives under /admin; health, readiness and metrics do not. */
export function isAdminPath(path: string | undefined): boolean {
  return !!path && (path === '/admin' || path.startsWith('/admin/'));
}

/**
 * The tenant a caller is confined to: null for root (every tenant), else its own tenant. Fails closed
 * should a non-root principal ever lack a tenant (the table's CHECK constraint says it cannot).
 */
export function confinedTenant(p: AdminPrincipal): string | null {
  if (p.role === 'root') return null;
  if (!p.tenantId) throw Errors.forbidden('This admin token belongs to no tenant.');
  return p.tenantId;
}

/** Which tenants' rows a read may return: one tenant, or every tenant (root only). */
export type TenantScope = { tenantId: string } | 'all';

/**
 * The scope of a read by `p` that asks for `requested` (a tenant id; undefined = whatever it may see):
 * root gets what it asks for (`'all'` when it names no tenant); anyone else gets its own tenant, and
 * naming another tenant answers the same 404 as an unknown id.
 */
export function readScope(p: AdminPrincipal, requested?: string | null): TenantScope {
  const own = confinedTenant(p);
  if (own) {
    if (requested && requested !== own) throw tenantNotFound(requested);
    return { tenantId: own };
  }
  return requested ? { tenantId: requested } : 'all';
}
