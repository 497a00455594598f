import { NormalisedUsage, StreamMeter } from '@gw/providers';
import { Admission } from '@gw/limits';
import { ResolvedRoute, ResolvedTarget } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { IncomingHttpHeaders } from 'node:http';
import { forwardedClientHeaders, upstreamHeaderValue } from './client-headers';

export type Endpoint = 'chat' | 'responses' | 'responses_compact' | 'embeddings';

/** Why a request was cut short by us rather than by the upstream. */
export class ClientGone extends Error {
  constructor() {
    super('client closed the connection');
  }
}

/** Everything one request accumulates on its way through the pipeline; becomes its ledger row. */
export class CallContext implements StreamMeter {
  readonly t0 = performance.now();
  readonly startedAt = new Date();
  readonly abort = new AbortController();
  route?: ResolvedRoute;
  target?: ResolvedTarget;
  /** The client's session (`prompt_cache_key`, `session-id`): its requests keep to one target (affinity). */
  sessionKey?: string;
  /**
   * The target the session belongs on: first in its order of all the route's targets, healthy or not. A
   * request served elsewhere has moved, and leaves out what only the home target's account can read.
   * Undefined when the order is random (no session key and a choice to make).
   */
  home?: ResolvedTarget;
  /** Items sealed by the home account left out of what a moved session sent (encrypted reasoning, compaction). */
  sealedDropped = 0;
  /** The upstream could not read something sealed by another account: leave all such items out from now on. */
  unseal = false;
  upstreamModel: string | null = null;
  status = 200;
  errorCode: string | null = null;
  usage: NormalisedUsage = { inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0 };
  /** Whether `usage` came from the provider (true) or is our estimate of a cut-short stream. */
  usageReported = false;
  ttfbMs: number | null = null;
  attempts = 0;
  /** The client's own x-request-id, kept beside ours (never used as the ledger key). */
  clientRequestId: string | null = null;
  /** The client's session (`session-id` header, else `prompt_cache_key`), bounded: a ledger column. */
  sessionId: string | null = null;
  /** The request's headers: the allow-listed ones (client-headers.ts) are picked only for a native target, when dispatched. */
  requestHeaders?: IncomingHttpHeaders;
  private picked?: Record<string, string> | null;
  /** What the upstream that answered said of itself: its request id and the model it reports serving. */
  upstreamRequestId: string | null = null;
  upstreamServedModel: string | null = null;
  /** The client's parsed body and its bytes, when those may be forwarded with only the model changed (forwarded-bytes.ts). */
  clientBody?: unknown;
  clientBytes?: Buffer;
  /** Prompt size estimated from the body (bytes / 4), used when a stream is cut short. */
  promptEstimate = 0;
  streamed = false;
  admission?: Admission;
  /** Set when the budget admitted only this much output per choice: written into the forwarded body. */
  outputCap?: number;
  /** `service_tier` as requested, then as the upstream reported it (authoritative): priority and flex are priced apart. */
  serviceTier: string | null = null;
  /** What a translation for the serving provider left out (bounded labels): `x-gateway-dropped`, log line, metric. */
  dropped?: readonly string[];
  /** Called where the dispatcher issues each upstream attempt: the usage journal's "sent upstream" record. */
  onDispatch?: () => void;
  /** Metered already (settled, ledger row journaled): `SettleStep.settle` runs once, before the last byte. */
  finished = false;

  constructor(
    readonly requestId: string,
    readonly principal: Principal,
    readonly endpoint: Endpoint,
    readonly model: string | null,
  ) {}

  private deadline?: NodeJS.Timeout;

  /**
   * (Re)arms the total-time budget, counted from the start of the request (a route may override the
   * default once it is resolved). Expiry aborts the upstream with `reason`, which the relays report.
   */
  setDeadline(totalMs: number, reason: () => Error): void {
    clearTimeout(this.deadline);
    const left = Math.max(0, totalMs - (performance.now() - this.t0));
    this.deadline = setTimeout(() => {
      if (!this.abort.signal.aborted) this.abort.abort(reason());
    }, left);
    this.deadline.unref();
  }

  clearDeadline(): void {
    clearTimeout(this.deadline);
  }

  /** The tier the client asked for: priced until the upstream says which it served, except a discount one. */
  noteRequestedTier(v: unknown): void {
    // `flex` is cheaper: believed only when the upstream confirms it (a server that ignores it serves default).
    if (typeof v === 'string' && v && v !== 'flex') this.serviceTier = v.slice(0, 32);
  }

  /** The tier the upstream reports it served: authoritative. */
  noteServiceTier(v: unknown): void {
    if (typeof v === 'string' && v) this.serviceTier = v.slice(0, 32);
  }

  /** The model name target `t` is asked for: the one place it is worked out (a pass-through target keeps the client's). */
  modelFor(t: ResolvedTarget): string {
    return t.model ?? this.model ?? '';
  }

  /** The upstream's own request id and served model, from its answer's headers (echoed to the client). */
  noteUpstreamHeaders(h: Record<string, string | string[] | undefined>): void {
    this.upstreamRequestId = upstreamHeaderValue(h['x-request-id']);
    this.upstreamServedModel = upstreamHeaderValue(h['openai-model']);
  }

  /** The client's allow-listed headers (client-headers.ts), worked out once, at the first dispatch that forwards them. */
  get clientHeaders(): Record<string, string> | undefined {
    if (this.picked === undefined) this.picked = (this.requestHeaders && forwardedClientHeaders(this.requestHeaders)) ?? null;
    return this.picked ?? undefined;
  }

  markFirstByte(): void {
    this.ttfbMs ??= Math.round(performance.now() - this.t0);
  }

  /**
   * A stream cut short (or one that reported no usage) is not free: the prompt estimate plus what was
   * streamed, about one token per delta.
   */
  estimateCutShort(deltas: number): void {
    const u = this.usage;
    this.usage = {
      inputTokens: u.inputTokens || this.promptEstimate,
      outputTokens: Math.max(u.outputTokens, deltas),
      cachedTokens: u.cachedTokens,
      reasoningTokens: 0,
    };
  }

  get clientGone(): boolean {
    return this.abort.signal.aborted && this.abort.signal.reason instanceof ClientGone;
  }
}
