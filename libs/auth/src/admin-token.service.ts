import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Errors, newSecret, safeEqualHex, sha256Hex } from '@gw/common';
import { AdminRole, AdminTokenEntity, SettingsRepository } from '@gw/db';
import { TenantService } from '@gw/tenancy';
import { AdminPrincipal, BOOTSTRAP_ROOT } from './admin-principal';
import { AdminTokenRepository } from './admin-token.repository';

const SETTING = 'admin_token_sha256';
export const ADMIN_TOKEN_PREFIX = 'gwa-';
/** last_used_at is a hint for humans ("is this token still in use?"): minute precision is plenty. */
const TOUCH_EVERY_MS = 60_000;

export type AdminTokenView = Omit<AdminTokenEntity, 'tokenHash'>;

export function toAdminTokenView(t: AdminTokenEntity): AdminTokenView {
  const { tokenHash: _hidden, ...view } = t;
  return view;
}

export type AdminAuthResult = { ok: true; principal: AdminPrincipal } | { ok: false; reason: 'unknown' | 'expired' };

export interface AdminTokenInput {
  role: AdminRole;
  name: string;
  expiresAt?: Date | null;
}

/**
 * Admin credentials. The bootstrap root token: ADMIN_TOKEN wins when set; otherwise the first start
 * generates one, prints it once, and keeps only its sha256 in the settings table. Every other admin
 * token lives in `admin_tokens` (sha256 only) and is resolved with one indexed read per admin request:
 * admin traffic is low, and reading through means revocation takes effect at once on every replica.
 */
@Injectable()
export class AdminTokenService implements OnApplicationBootstrap {
  private readonly logger = new Logger('AdminToken');
  private hash?: string;

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly settings: SettingsRepository,
    private readonly tokens: AdminTokenRepository,
    private readonly tenants: TenantService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.cfg.adminToken) {
      this.hash = sha256Hex(this.cfg.adminToken);
      return;
    }
    const stored = await this.settings.get(SETTING);
    if (stored) {
      this.hash = stored;
      return;
    }
    const token = newSecret('adm-', 24);
    if (await this.settings.setIfAbsent(SETTING, sha256Hex(token))) {
      this.hash = sha256Hex(token);
      const line = '='.repeat(78);
      // Printed once, on purpose to stdout: it is the only time anyone sees it.
      process.stdout.write(
        `\n${line}\n  Generated root admin token (shown once; only its hash is stored):\n\n    ${token}\n\n` +
          `  export ADMIN_TOKEN=${token}\n  Set ADMIN_TOKEN yourself to choose one; it then takes precedence.\n${line}\n\n`,
      );
    } else {
      this.hash = await this.settings.get(SETTING);
    }
  }

  isRoot(token: string): boolean {
    return !!this.hash && safeEqualHex(sha256Hex(token), this.hash);
  }

  async resolve(token: string): Promise<AdminAuthResult> {
    if (this.isRoot(token)) return { ok: true, principal: BOOTSTRAP_ROOT };
    if (!token.startsWith(ADMIN_TOKEN_PREFIX)) return { ok: false, reason: 'unknown' };
    const t = await this.tokens.findByHash(sha256Hex(token));
    if (!t || t.revokedAt) return { ok: false, reason: 'unknown' };
    if (t.expiresAt && t.expiresAt.getTime() <= Date.now()) return { ok: false, reason: 'expired' };
    if (!t.lastUsedAt || Date.now() - t.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      this.tokens.touch(t.id).catch((e: unknown) => this.logger.warn(`last_used_at update failed: ${(e as Error).message}`));
    }
    return { ok: true, principal: { role: t.role, tenantId: t.tenantId, tokenId: t.id, prefix: t.prefix } };
  }

  /** `tenantId` null = every token (root callers only). */
  async list(tenantId: string | null): Promise<AdminTokenView[]> {
    if (tenantId !== null) await this.tenants.get(tenantId);
    return (await this.tokens.list(tenantId)).map(toAdminTokenView);
  }

  async get(tenantId: string | null, id: string): Promise<AdminTokenView> {
    return toAdminTokenView(await this.getEntity(tenantId, id));
  }

  /**
   * `tenantId` null creates a root token. Returns the secret exactly once; only its sha256 is stored.
   * Who may create which role is the caller's business (the controllers and the access guard).
   */
  async create(tenantId: string | null, input: AdminTokenInput, creator: AdminPrincipal): Promise<{ token: AdminTokenView; secret: string }> {
    if (input.role === 'root' && tenantId !== null) throw Errors.badRequest('A root token belongs to no tenant: omit tenantId.', 'tenantId');
    if (input.role !== 'root' && tenantId === null) throw Errors.badRequest(`A ${input.role} token needs a tenantId.`, 'tenantId');
    if (tenantId !== null) await this.tenants.get(tenantId);
    const secret = newSecret(ADMIN_TOKEN_PREFIX, 24);
    const t = await this.tokens.create(tenantId, {
      role: input.role,
      name: input.name,
      prefix: secret.slice(0, ADMIN_TOKEN_PREFIX.length + 8),
      tokenHash: sha256Hex(secret),
      expiresAt: input.expiresAt ?? null,
      createdBy: creator.tokenId,
    });
    return { token: toAdminTokenView(t), secret };
  }

  async revoke(tenantId: string | null, id: string): Promise<AdminTokenView> {
    await this.getEntity(tenantId, id);
    return toAdminTokenView((await this.tokens.revoke(tenantId, id))!);
  }

  async delete(tenantId: string | null, id: string): Promise<void> {
    if (!(await this.tokens.delete(tenantId, id))) throw tokenNotFound(id);
  }

  private async getEntity(tenantId: string | null, id: string): Promise<AdminTokenEntity> {
    const t = await this.tokens.get(tenantId, id);
    if (!t) throw tokenNotFound(id);
    return t;
  }
}

function tokenNotFound(id: string) {
  return Errors.notFound(`No token with id ${id}.`, 'token_not_found');
}
