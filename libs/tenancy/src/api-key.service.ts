import { Injectable } from '@nestjs/common';
import { Errors, newSecret, sha256Hex } from '@gw/common';
import { ApiKeyEntity, ChangeFeed, LimitSettings } from '@gw/db';
import { ApiKeyRepository } from './api-key.repository';
import { TenantService } from './tenant.service';

export const KEY_PREFIX = 'sk-gw-';

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
  async create(tenantId: string, input: ApiKeyInput): Promise<{ key: ApiKeyView; secret: string }> {
    await this.tenants.get(tenantId);
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

  async update(tenantId: string, keyId: string, patch: Partial<ApiKeyInput>): Promise<ApiKeyView> {
    const current = await this.keys.get(tenantId, keyId);
    if (!current) throw Errors.notFound(`No key with id ${keyId} in this tenant.`, 'key_not_found');
    const next: Partial<ApiKeyEntity> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.allowedModels !== undefined) next.allowedModels = patch.allowedModels;
    if (patch.allowedIps !== undefined) next.allowedIps = patch.allowedIps;
    if (patch.expiresAt !== undefined) next.expiresAt = patch.expiresAt;
    if (patch.limits !== undefined) next.limits = { ...current.limits, ...patch.limits };
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
