import type { JsonDialect, Operation, SseObserver } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import type { CallContext, Endpoint } from './call-context';

export type Body = Record<string, unknown>;

/**
 * What one request of an endpoint needs that the others do not, for the pipeline to drive: the reservation
 * inputs, stream or not, which targets accept it, what each target is sent, and which dialect relays the answer.
 */
export interface CallPlan {
  readonly stream: boolean;
  /** The output cap the client asked for (checked); 0: the endpoint has no output; undefined: the default. */
  readonly maxOutput: number | undefined;
  /** How many answers (`n`): a multiplier of the output cap. */
  readonly choices: number;
  /** Leaves out the targets that cannot serve this request; undefined: all can. */
  readonly accept?: (t: ResolvedTarget) => boolean;
  /** The upstream operation target `t` is asked for. */
  operation(t: ResolvedTarget): Operation;
  /** The body target `t` is sent, before the model is rewritten and the provider's adapter prepares it (not modified). */
  body(t: ResolvedTarget, op: Operation): Body;
  /** Last touches to the upstream body, in place, after the adapter's: the output cap, stream options. */
  shape(b: Body, t: ResolvedTarget, ctx: CallContext): void;
  /** How the answer of `up` is relayed: a JSON dialect (pass-through or translating) or an SSE observer. */
  relay(ctx: CallContext, up: UpstreamResponse): JsonDialect | SseObserver;
}

/** One endpoint (`POST /v1/…`) of the data plane: everything else is the pipeline's. */
export interface EndpointHandler {
  readonly endpoint: Endpoint;
  /**
   * Validates the endpoint's own fields (the common ones are checked and the route is resolved on `ctx`
   * already) and plans the call; throws OpenAI-shaped 400s.
   */
  plan(body: Body, ctx: CallContext): CallPlan;
}
