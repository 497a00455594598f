import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One admin mutation: who (token id, prefix and role), what (action, object), the object's state
 * before and after with secrets removed, when and from where. Append-only; no foreign keys, so the
 * history outlives the tenants, keys and tokens it names.
 */
@Entity('audit_log')
export class AuditEntryEntity {
  /** bigserial: insertion order, and a stable tie-break for entries written in the same instant. */
  @PrimaryGeneratedColumn('increment', { type: 'bigint' }) id: string;
  @Column({ type: 'timestamptz', default: () => 'now()' }) at: Date;
  @Column({ name: 'actor_token_id', type: 'uuid', nullable: true }) actorTokenId: string | null;
  @Column({ name: 'actor_prefix', type: 'text', nullable: true }) actorPrefix: string | null;
  @Column({ name: 'actor_role', type: 'text' }) actorRole: string;
  /** The tenant the object belongs to; null for instance-wide objects (providers, prices, global routes). */
  @Column({ name: 'tenant_id', type: 'uuid', nullable: true }) tenantId: string | null;
  @Column({ type: 'text' }) action: string;
  @Column({ name: 'object_type', type: 'text' }) objectType: string;
  @Column({ name: 'object_id', type: 'text', nullable: true }) objectId: string | null;
  @Column({ type: 'jsonb', nullable: true }) before: Record<string, unknown> | null;
  @Column({ type: 'jsonb', nullable: true }) after: Record<string, unknown> | null;
  @Column({ type: 'text', nullable: true }) ip: string | null;
  @Column({ name: 'request_id', type: 'text', nullable: true }) requestId: string | null;
}
