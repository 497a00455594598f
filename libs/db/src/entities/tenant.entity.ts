import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { LimitSettings } from './limit-settings';

@Entity('tenants')
export class TenantEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text', unique: true }) name: string;
  /** Rate limits and budgets for the whole tenant (see libs/limits). */
  @Column({ type: 'jsonb', default: () => "'{}'" }) limits: LimitSettings;
  @Column({ type: 'boolean', default: true }) enabled: boolean;
  /** Set by root: the tenant's own admins may manage routes scoped to the tenant. */
  @Column({ name: 'allow_tenant_routes', type: 'boolean', default: false }) allowTenantRoutes: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
