import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { AdminRole } from '@gw/db';
import { AdminPrincipal } from './admin-principal';

export const ROLES_KEY = 'gw:admin-roles';
export const TENANT_PARAM_KEY = 'gw:tenant-param';
export const PUBLIC_KEY = 'gw:public';
export const RESOURCE_KEY = 'gw:admin-resource';
export const AUDIT_ACTION_KEY = 'gw:audit-action';

/**
 * Roles that may call a handler (method metadata overrides class metadata). Without it a handler under
 * /admin is root-only: new endpoints are closed until someone decides who may use them.
 */
export const Roles = (...roles: AdminRole[]) => SetMetadata(ROLES_KEY, roles);

/**
 * The route parameter that names the tenant the request acts on (default `tenantId`): a tenant's
 * admin or viewer passes only with its own tenant's id; any other id answers 404.
 */
export const TenantScoped = (param = 'tenantId') => SetMetadata(TENANT_PARAM_KEY, param);

/** No admin credential needed (health and the like). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export interface AdminResourceMeta {
  /** Singular name used in audit actions (`key.create`) and in 404 messages. */
  type: string;
  /** Table whose row (by `:id`) the audit log snapshots before and after a mutation. */
  table?: string;
}

/** What a controller manages, for the audit log and for uniform 404s. */
export const AdminResource = (meta: AdminResourceMeta) => SetMetadata(RESOURCE_KEY, meta);

/** Overrides the audit action derived from the route (`<type>.create|update|delete|<verb>`). */
export const AuditAction = (action: string) => SetMetadata(AUDIT_ACTION_KEY, action);

/** The authenticated admin principal. */
export const CurrentAdmin = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): AdminPrincipal => ctx.switchToHttp().getRequest<{ user: AdminPrincipal }>().user,
);
