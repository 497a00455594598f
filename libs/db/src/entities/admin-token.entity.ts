import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export type AdminRole = 'root' | 'admin' | 'viewer';
export const ADMIN_ROLES: readonly AdminRole[] = ['root', 'admin', 'viewer'];

/**
 * A credential for the admin API. `root` tokens have no tenant; `admin` and `viewer` tokens belong to
 * exactly one tenant (a CHECK constraint holds that). Like keys, only the sha256 is stored.
 */
@Entity('admin_tokens')
export class AdminTokenEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Index() @Column({ name: 'tenant_id', type: 'uuid', nullable: true }) tenantId: string | null;
  @Column({ type: 'text' }) role: AdminRole;
  @Column({ type: 'text' }) name: string;
  /** First characters of the secret, so people can tell tokens apart in lists and the audit log. */
  @Column({ type: 'text' }) prefix: string;
  @Column({ name: 'token_hash', type: 'text', unique: true }) tokenHash: string;
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true }) expiresAt: Date | null;
  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true }) revokedAt: Date | null;
  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true }) lastUsedAt: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  /** Token id of the creator; null = the bootstrap root token (ADMIN_TOKEN or the generated one). */
  @Column({ name: 'created_by', type: 'uuid', nullable: true }) createdBy: string | null;
}
