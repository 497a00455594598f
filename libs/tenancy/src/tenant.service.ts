import { Injectable } from '@nestjs/common';
import { Errors, OpenAIError } from '@gw/common';
import { ChangeFeed, LimitSettings, TenantEntity } from '@gw/db';
import { TenantRepository } from './tenant.repository';

/**
 * The one answer for a tenant that does not exist *or* is not the caller's: identical either way, so
 * that a tenant admin cannot tell another tenant's id from a made-up one.
 */
export function tenantNotFound(tenantId: string): OpenAIError {
  return Errors.notFound(`No tenant with id ${tenantId}.`, 'tenant_not_found');
}

@Injectable()
export class TenantService {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly changes: ChangeFeed,
  ) {}

  list(): Promise<TenantEntity[]> {
    return this.tenants.list();
  }

  async get(tenantId: string): Promise<TenantEntity> {
    const t = await this.tenants.get(tenantId);
    if (!t) throw tenantNotFound(tenantId);
    return t;
  }

  async create(input: { name: string; limits?: LimitSettings; allowTenantRoutes?: boolean }): Promise<TenantEntity> {
    if (await this.tenants.findByName(input.name)) throw Errors.conflict(`A tenant named "${input.name}" already exists.`, 'name');
    const t = await this.tenants.create({ name: input.name, limits: input.limits ?? {}, allowTenantRoutes: input.allowTenantRoutes ?? false });
    await this.changes.bump();
    return t;
  }

  async update(tenantId: string, patch: { name?: string; limits?: LimitSettings; enabled?: boolean; allowTenantRoutes?: boolean }): Promise<TenantEntity> {
    const current = await this.get(tenantId);
    if (patch.name && patch.name !== current.name && (await this.tenants.findByName(patch.name))) {
      throw Errors.conflict(`A tenant named "${patch.name}" already exists.`, 'name');
    }
    const next: Partial<TenantEntity> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.enabled !== undefined) next.enabled = patch.enabled;
    if (patch.allowTenantRoutes !== undefined) next.allowTenantRoutes = patch.allowTenantRoutes;
    if (patch.limits !== undefined) next.limits = { ...current.limits, ...patch.limits };
    const t = (await this.tenants.update(tenantId, next))!;
    await this.changes.bump();
    return t;
  }

  async delete(tenantId: string): Promise<void> {
    if (!(await this.tenants.delete(tenantId))) throw tenantNotFound(tenantId);
    await this.changes.bump();
  }
}
