import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type ProviderKind = 'openai' | 'openrouter' | 'ollama';
export const PROVIDER_KINDS: readonly ProviderKind[] = ['openai', 'openrouter', 'ollama'];

/** Per-provider knobs that are data, not code. */
export interface ProviderSettings {
  /** Speaks the Responses API natively (pass-through); otherwise /v1/responses is translated to chat. */
  responsesApi?: boolean;
  /** OpenRouter `provider` preferences, e.g. {"sort":"price"}, applied unless the client sends its own. */
  providerPreferences?: Record<string, unknown>;
  /** Extra static headers (e.g. OpenRouter attribution: HTTP-Referer, X-Title). */
  headers?: Record<string, string>;
  /** Models this provider is known to serve (discovered, e.g. Ollama /api/tags). */
  models?: string[];
}

@Entity('providers')
export class ProviderEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text', unique: true }) name: string;
  @Column({ type: 'text' }) kind: ProviderKind;
  @Column({ name: 'base_url', type: 'text' }) baseUrl: string;
  /** AES-256-GCM sealed credential; write-only through the API. */
  @Column({ name: 'credential_enc', type: 'text', nullable: true }) credentialEnc: string | null;
  @Column({ type: 'jsonb', default: () => "'{}'" }) settings: ProviderSettings;
  @Column({ type: 'boolean', default: true }) enabled: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
