import { Column, Entity, PrimaryColumn } from 'typeorm';

const numeric = { from: (v: string | null) => (v === null ? null : Number(v)), to: (v: number | null) => v };

/** One row per authenticated request, whatever its end. Written in batches by the ledger writer. */
@Entity('usage_records')
export class UsageRecordEntity {
  /** The gateway's own id (x-request-id of the response); never client-chosen. */
  @PrimaryColumn({ name: 'request_id', type: 'text' }) requestId: string;
  /** The `x-request-id` the client sent, if any: for tracing only, neither unique nor trusted. */
  @Column({ name: 'client_request_id', type: 'text', nullable: true }) clientRequestId?: string | null;
  /** The client's session id (Codex's `session-id` header, else `prompt_cache_key`): for reports by session, not trusted. */
  @Column({ name: 'session_id', type: 'text', nullable: true }) sessionId?: string | null;
  @Column({ name: 'tenant_id', type: 'uuid' }) tenantId: string;
  @Column({ name: 'key_id', type: 'uuid', nullable: true }) keyId: string | null;
  @Column({ name: 'route_id', type: 'uuid', nullable: true }) routeId: string | null;
  @Column({ name: 'provider_id', type: 'uuid', nullable: true }) providerId: string | null;
  @Column({ type: 'text' }) endpoint: string;
  @Column({ name: 'requested_model', type: 'text', nullable: true }) requestedModel: string | null;
  @Column({ name: 'upstream_model', type: 'text', nullable: true }) upstreamModel: string | null;
  @Column({ type: 'int' }) status: number;
  @Column({ name: 'error_code', type: 'text', nullable: true }) errorCode: string | null;
  @Column({ name: 'input_tokens', type: 'int', default: 0 }) inputTokens: number;
  @Column({ name: 'output_tokens', type: 'int', default: 0 }) outputTokens: number;
  @Column({ name: 'cached_tokens', type: 'int', default: 0 }) cachedTokens: number;
  @Column({ name: 'cost_usd', type: 'numeric', precision: 18, scale: 8, default: 0, transformer: numeric }) costUsd: number;
  @Column({ name: 'latency_ms', type: 'int', nullable: true }) latencyMs: number | null;
  @Column({ name: 'ttfb_ms', type: 'int', nullable: true }) ttfbMs: number | null;
  @Column({ type: 'boolean', default: false }) streamed: boolean;
  @Column({ type: 'int', default: 1 }) attempts: number;
  @Column({ name: 'started_at', type: 'timestamptz' }) startedAt: Date;
  @Column({ name: 'finished_at', type: 'timestamptz' }) finishedAt: Date;
}
