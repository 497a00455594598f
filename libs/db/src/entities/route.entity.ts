import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export interface RouteTarget {
  providerId: string;
  /** Upstream model id; null = pass the requested model through unchanged. */
  model: string | null;
  /** Relative weight among targets of the same priority. */
  weight: number;
  /** Lower runs first; targets with the next priority are fallbacks. */
  priority: number;
}

export interface RouteSettings {
  /** Attempts per target (1 = no retry). */
  maxAttempts?: number;
  backoffMs?: number;
  /** OpenRouter `provider` preferences for this route. */
  providerPreferences?: Record<string, unknown>;
  /** Per-route overrides of UPSTREAM_CONNECT/FIRST_BYTE/IDLE/TOTAL_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
  totalTimeoutMs?: number;
}

@Entity('routes')
export class RouteEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  /** null = global route; otherwise only this tenant sees it (and it overrides global ones). */
  @Column({ name: 'tenant_id', type: 'uuid', nullable: true }) tenantId: string | null;
  // Public model name, alias or glob (`gpt-oss*`, `*/*`).
  @Column({ name: 'model_pattern', type: 'text' }) modelPattern: string;
  @Column({ type: 'jsonb' }) targets: RouteTarget[];
  @Column({ type: 'jsonb', default: () => "'{}'" }) settings: RouteSettings;
  @Column({ type: 'boolean', default: true }) enabled: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
