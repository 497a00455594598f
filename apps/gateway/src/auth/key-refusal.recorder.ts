import { Injectable, OnModuleInit } from '@nestjs/common';
import { KeyRefusal, VirtualKeyStrategy } from '@gw/auth';
import { clientRequestIdOf, requestIdOf } from '@gw/common';
import { LedgerWriter } from '@gw/metering';
import { recordedModelName } from '../proxy/model-name';

/** Paths whose requests are metered, and the ledger's name for each (as ProxyService records them). */
const ENDPOINTS: Record<string, string> = { '/v1/chat/completions': 'chat', '/v1/responses': 'responses', '/v1/embeddings': 'embeddings' };

/**
 * A key the gateway recognised but refused (`ip_not_allowed`: a known key used from an address outside its
 * `allowedIps`) still gets its one ledger row, like a request refused later by a limit: status 403, its
 * `error_code`, no tokens, no cost. The refusal is decided before the body is read (the key may have leaked:
 * its holder elsewhere must not make the gateway read 50 MB either), so the row has no requested model and
 * `streamed` false. Requests whose key is unknown, revoked or expired have no row: KeyCache does not say
 * whose they were (see docs/limits.md).
 */
@Injectable()
export class KeyRefusalRecorder implements OnModuleInit {
  constructor(
    private readonly strategy: VirtualKeyStrategy,
    private readonly ledger: LedgerWriter,
  ) {}

  onModuleInit(): void {
    this.strategy.onRefused((r) => this.record(r));
  }

  record({ req, principal, error }: KeyRefusal): void {
    const endpoint = ENDPOINTS[req.path];
    if (!endpoint) return;
    // Empty when refused before the body (always, today); kept so a later refusal point records what it has.
    const body = (req.body ?? {}) as { model?: unknown; stream?: unknown };
    const now = new Date();
    this.ledger.record({
      requestId: requestIdOf(req),
      clientRequestId: clientRequestIdOf(req),
      tenantId: principal.tenantId,
      keyId: principal.keyId,
      routeId: null,
      providerId: null,
      endpoint,
      requestedModel: recordedModelName(body.model),
      upstreamModel: null,
      status: error.getStatus(),
      errorCode: error.body.error.code ?? error.body.error.type,
      inputTokens: 0,
      outputTokens: 0,
      cachedTokens: 0,
      costUsd: 0,
      latencyMs: 0,
      ttfbMs: null,
      streamed: body.stream === true,
      attempts: 0,
      startedAt: now,
      finishedAt: now,
    });
  }
}
