import { CallHandler, ExecutionContext, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { clientAddressOf, requestIdOf } from '@gw/common';
import type { Request } from 'express';
import { Observable, concatMap, defer, switchMap } from 'rxjs';
import { AdminPrincipal, TenantScope, isAdminPath, isAdminPrincipal, readScope } from './admin-principal';
import { AUDIT_ACTION_KEY, AdminResourceMeta, RESOURCE_KEY } from './access.decorators';
import { AuditService } from './audit.service';

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The admin app's global interceptor (APP_INTERCEPTOR): every successful POST/PUT/PATCH/DELETE under
 * /admin writes one audit entry, so no controller can forget to. `@AdminResource({type, table})` makes
 * the entry precise (the row by `:id` before and after, as stored, secrets stripped); without it the
 * action is derived from the route and `after` is the response body. A refused or failed request
 * changed nothing and writes nothing.
 *
 * The entry is written right after the handler's own commit, not in its transaction: a failure to
 * write it is logged as an error with the request id rather than undoing a change already made.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Audit');

  constructor(
    private readonly reflector: Reflector,
    private readonly audit: AuditService,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest<Request>();
    if (!MUTATIONS.has(req.method) || !isAdminPath(req.path)) return next.handle();
    const targets = [ctx.getHandler(), ctx.getClass()];
    const resource = this.reflector.getAllAndOverride<AdminResourceMeta>(RESOURCE_KEY, targets);
    const derived = deriveAction(req.method, (req.route as { path?: string } | undefined)?.path ?? req.path);
    const type = resource?.type ?? derived.type;
    const action = this.reflector.getAllAndOverride<string>(AUDIT_ACTION_KEY, targets) ?? `${type}.${derived.verb}`;
    const params = (req.params ?? {}) as Record<string, string>;
    const table = resource?.table;
    // Snapshots are read with the caller's own scope: a tenant admin's entry can only ever hold its tenant's rows.
    const actor = isAdminPrincipal(req.user) ? req.user : null;
    const scope: TenantScope | null = actor ? scopeOf(actor) : null;

    return defer(() => this.snapshot(scope, table, params.id)).pipe(
      switchMap((before) =>
        next.handle().pipe(
          concatMap(async (body: unknown) => {
            const b = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
            const objectId = params.id ?? (typeof b?.id === 'string' ? b.id : null);
            const after = table ? (objectId ? await this.snapshot(scope, table, objectId) : null) : (b ?? null);
            const row = after ?? before;
            const tenantId =
              table === 'tenants'
                ? objectId
                : row && 'tenant_id' in row
                  ? ((row.tenant_id as string | null) ?? null)
                  : (params.tenantId ?? (typeof b?.tenantId === 'string' ? b.tenantId : null));
            try {
              await this.audit.record({
                actor,
                tenantId,
                action,
                objectType: type,
                objectId,
                before,
                after,
                ip: clientAddressOf(req) || null,
                requestId: requestIdOf(req),
              });
            } catch (e) {
              this.logger.error(`request ${requestIdOf(req)}: audit entry for ${action} ${objectId ?? ''} not written: ${(e as Error).message}`);
            }
            return body;
          }),
        ),
      ),
    );
  }

  private async snapshot(scope: TenantScope | null, table: string | undefined, id: string | undefined): Promise<Record<string, unknown> | null> {
    if (!scope || !table || !id) return null;
    try {
      return await this.audit.snapshot(scope, table, id);
    } catch (e) {
      this.logger.warn(`snapshot of ${table} ${id} failed: ${(e as Error).message}`);
      return null;
    }
  }
}

function scopeOf(actor: AdminPrincipal): TenantScope | null {
  try {
    return readScope(actor);
  } catch {
    return null;
  }
}

/**
 * `POST /admin/tenants/:tenantId/keys` → key.create; `POST …/keys/:id/revoke` → key.revoke;
 * `PATCH …/:id` → update; `DELETE …/:id` → delete. The type is the last plural noun, singularised.
 */
export function deriveAction(method: string, routePath: string): { type: string; verb: string } {
  const segs = routePath.split('/').filter(Boolean);
  const isParam = (s: string | undefined) => !!s && s.startsWith(':');
  const last = segs[segs.length - 1];
  let verb = method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : 'update';
  let nouns = segs.filter((s) => !isParam(s));
  if (segs.length >= 3 && !isParam(last) && segs[segs.length - 2] === ':id') {
    verb = last;
    nouns = nouns.slice(0, -1);
  }
  const noun = nouns[nouns.length - 1] ?? 'admin';
  return { type: noun.length > 3 && noun.endsWith('s') ? noun.slice(0, -1) : noun, verb };
}
