import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

const numeric = { from: (v: string | null) => (v === null ? null : Number(v)), to: (v: number | null) => v };

/** USD per million tokens for models matching `modelPattern` (exact name or glob). */
@Entity('prices')
export class PriceEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'model_pattern', type: 'text', unique: true }) modelPattern: string;
  @Column({ name: 'input_per_m', type: 'numeric', transformer: numeric }) inputPerM: number;
  @Column({ name: 'output_per_m', type: 'numeric', transformer: numeric }) outputPerM: number;
  @Column({ name: 'cached_input_per_m', type: 'numeric', nullable: true, transformer: numeric }) cachedInputPerM: number | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
