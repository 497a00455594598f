import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { LimitSettings } from './limit-settings';

@Entity('api_keys')
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Index() @Column({ name: 'tenant_id', type: 'uuid' }) tenantId: string;
  @Column({ type: 'text' }) name: string;
  /** First characters of the secret, shown in lists so people can tell keys apart. */
  @Column({ type: 'text' }) prefix: string;
  /** sha256 of the whole secret; the secret itself is never stored. */
  @Column({ name: 'key_hash', type: 'text', unique: true }) keyHash: string;
  /** Model names or globs; null = every routed model. */
  @Column({ name: 'allowed_models', type: 'text', array: true, nullable: true }) allowedModels: string[] | null;
  /** CIDR ranges the key may be used from; null = anywhere. */
  @Column({ name: 'allowed_ips', type: 'text', array: true, nullable: true }) allowedIps: string[] | null;
  @Column({ type: 'jsonb', default: () => "'{}'" }) limits: LimitSettings;
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true }) expiresAt: Date | null;
  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true }) revokedAt: Date | null;
  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true }) lastUsedAt: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
