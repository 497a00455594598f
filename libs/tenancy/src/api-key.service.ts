import { Injectable } from '@nestjs/common';
import { Errors, newSecret, sha256Hex } from '@gw/common';
import { ApiKeyEntity, ChangeFeed, LimitSettings, TenantEntity } from '@gw/db';
import { ApiKeyRepository } from './api-key.repository';
import { keyLimitOverQuota } from './tenant-quota.policy';
import { TenantService } from './tenant.service';

export const KEY_PREFIX = 'sk-gw-';

/** How a key change is checked: tenant admins may only hand out limits within their tenant's. */
export interface KeyChangeOptions {
  withinTenantQuota?: boolean;
}

export interface ApiKeyInput {
  name: string;
  allowedModels?: string[] | null;
  allowedIps?: string[] | null;
  expiresAt?: Date | null;
  limits?: LimitSettings;
}

/** What the API shows of a key: never the hash, never the secret (except once, at creation). */
export type ApiKeyView = Omit<ApiKeyEntity, 'keyHash'>;

export function toKeyView(k: ApiKeyEntity): ApiKeyView {
  const { keyHash: _hidden, ...view } = k;
  return view;
}

@Injectable()
export class ApiKeyService {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly tenants: TenantService,
    private readonly changes: ChangeFeed,
  ) {}

  async list(tenantId: string): Promise<ApiKeyView[]> {
    await this.tenants.get(tenantId);
    return (await this.keys.list(tenantId)).map(toKeyView);
  }

  async get(tenantId: string, keyId: string): Promise<ApiKeyView> {
    const k = await this.keys.get(tenantId, keyId);
    if (!k) throw Errors.notFound(`No key with id ${keyId} in this tenant.`, 'key_not_found');
    return toKeyView(k);
  }

  /** Returns the secret exactly once; only its sha256 is stored. */
  async create(tenantId: string, input: ApiKeyInput, opts: KeyChangeOptions = {}): Promise<{ key: ApiKeyView; secret: string }> {
    const tenant = await this.tenants.get(tenantId);
    if (opts.withinTenantQuota) assertWithinQuota(input.limits ?? {}, tenant);
    const secret = newSecret(KEY_PREFIX);
    const k = await this.keys.create(tenantId, {
      name: input.name,
      prefix: secret.slice(0, KEY_PREFIX.length + 6),
      keyHash: sha256Hex(secret),
      allowedModels: input.allowedModels ?? null,
      allowedIps: input.allowedIps ?? null,
      expiresAt: input.expiresAt ?? null,
      limits: input.limits ?? {},
    });
    await this.changes.bump();
    return { key: toKeyView(k), secret };
  }

  async update(tenantId: string, keyId: string, patch: Partial<ApiKeyInput>, opts: KeyChangeOptions = {}): Promise<ApiKeyView> {
    const current = await this.keys.get(tenantId, keyId);
    if (!current) throw Errors.notFound(`No key with id ${keyId} in this tenant.`, 'key_not_found');
    const next: Partial<ApiKeyEntity> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.allowedModels !== undefined) next.allowedModels = patch.allowedModels;
    if (patch.allowedIps !== undefined) next.allowedIps = patch.allowedIps;
    if (patch.expiresAt !== undefined) next.expiresAt = patch.expiresAt;
    if (patch.limits !== undefined) next.limits = { ...current.limits, ...patch.limits };
    if (opts.withinTenantQuota && next.limits) assertWithinQuota(next.limits, await this.tenants.get(tenantId));
    const k = (await this.keys.update(tenantId, keyId, next))!;
    await this.changes.bump();
    return toKeyView(k);
  }

  async revoke(tenantId: string, keyId: string): Promise<ApiKeyView> {
    const current = await this.keys.get(tenantId, keyId);
    if (!current) throw Errors.notFound(`No key with id ${keyId} in this tenant.`, 'key_not_found');
    const k = current.revokedAt ? current : (await this.keys.update(tenantId, keyId, { revokedAt: new Date() }))!;
    await this.changes.bump();
    return toKeyView(k);
  }

  async delete(tenantId: string, keyId: string): Promise<void> {
    if (!(await this.keys.delete(tenantId, keyId))) throw Errors.notFound(`No key with id ${keyId} in this tenant.`, 'key_not_found');
    await this.changes.bump();
  }
}

function assertWithinQuota(limits: LimitSettings, tenant: TenantEntity): void {
  const over = keyLimitOverQuota(limits, tenant.limits ?? {});
  if (over) {
    throw Errors.badRequest(
      `limits.${over.field}: ${over.key} is above this tenant's limit (${over.tenant}); ask the root admin to raise the tenant's limit.`,
      `limits.${over.field}`,
      'limit_exceeds_tenant_quota',
    );
  }
}
