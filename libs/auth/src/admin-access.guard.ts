import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { AdminRole } from '@gw/db';
import { Errors } from '@gw/common';
import { tenantNotFound } from '@gw/tenancy';
import type { Request } from 'express';
import { AdminPrincipal, isAdminPath } from './admin-principal';
import { AdminResourceMeta, PUBLIC_KEY, RESOURCE_KEY, ROLES_KEY, TENANT_PARAM_KEY } from './access.decorators';
import { AdminGuard } from './auth.guards';

/**
 * The admin app's global guard (APP_GUARD): every route under /admin is authenticated and then
 * authorised, whether or not its controller remembered to ask.
 *
 * - root passes everything.
 * - A route with a tenant parameter (`@TenantScoped`, `:tenantId` by default) is open to that tenant's
 *   own tokens only; another tenant's id answers the same 404 as an unknown one, so ids do not leak.
 * - Otherwise the role must be in `@Roles` (default: root only). A refused request that names an object
 *   (has a path parameter) answers 404 as well; one that names nothing answers 403.
 * Row-level scoping of endpoints without a tenant in the path (routes, usage, audit) is the
 * controllers' job, through the principal (`@CurrentAdmin()`).
 */
@Injectable()
export class AdminAccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authn: AdminGuard,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest<Request>();
    if (!isAdminPath(req.path)) return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    await this.authn.canActivate(ctx);
    const p = req.user as AdminPrincipal;
    if (p.role === 'root') return true;

    const roles = this.reflector.getAllAndOverride<AdminRole[]>(ROLES_KEY, targets) ?? ['root'];
    const params = (req.params ?? {}) as Record<string, string>;
    const tenantParam = this.reflector.getAllAndOverride<string>(TENANT_PARAM_KEY, targets) ?? 'tenantId';
    const tenantId = params[tenantParam];
    if (tenantId !== undefined) {
      if (tenantId !== p.tenantId) throw tenantNotFound(tenantId);
      if (!roles.includes(p.role)) throw forbidden(p.role);
      return true;
    }
    if (roles.includes(p.role)) return true;
    const id = Object.values(params)[0];
    if (id !== undefined) {
      const type = this.reflector.getAllAndOverride<AdminResourceMeta>(RESOURCE_KEY, targets)?.type;
      throw type ? Errors.notFound(`No ${type} with id ${id}.`, `${type}_not_found`) : Errors.notFound('Not found.');
    }
    throw forbidden(p.role);
  }
}

function forbidden(role: AdminRole) {
  return Errors.forbidden(`A tenant ${role} token may not do this; it needs ${role === 'viewer' ? 'an admin or the root' : 'the root'} admin role.`);
}
