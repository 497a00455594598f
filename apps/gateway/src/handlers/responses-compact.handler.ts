import { Injectable } from '@nestjs/common';
import { Errors } from '@gw/common';
import { CompactedFromChatJson, CompactionSeal, JsonDialect, Operation, PASS_THROUGH_JSON, ResponsesFromChatTranslator, summaryRequest } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import type { CallContext } from '../pipeline/call-context';
import type { Body, CallPlan, EndpointHandler } from '../pipeline/call-plan';
import { capChatOutput } from '../pipeline/output-cap';
import { compactionOrigin } from './compaction.origin';
import { responsesRequestOf } from './responses-request';

/**
 * `POST /v1/responses/compact`: a conversation in, its compacted window out (the user messages and one
 * `compaction` item, `object: "response.compaction"`). Forwarded to providers that speak the Responses API
 * natively (their own `/responses/compact`, bytes untouched); a chat-only provider writes a summary the gateway
 * seals into the item. Never streamed; metered like any call (endpoint `responses_compact`).
 */
@Injectable()
export class ResponsesCompactHandler implements EndpointHandler {
  readonly endpoint = 'responses_compact';

  constructor(private readonly seal: CompactionSeal) {}

  plan(client: Body, ctx: CallContext): CallPlan {
    if (client.stream !== undefined && client.stream !== false) throw Errors.badRequest('`stream` is not supported by `/v1/responses/compact`.', 'stream');
    const { body, accept, translateNow } = responsesRequestOf(client, ctx, this.seal);
    const plan = new CompactPlan(body, ctx, this.seal, accept);
    if (translateNow) plan.translator();
    return plan;
  }
}

class CompactPlan implements CallPlan {
  readonly stream = false;
  readonly maxOutput = undefined;
  readonly choices = 1;
  private translated?: ResponsesFromChatTranslator;

  constructor(
    private readonly client: Body,
    private readonly ctx: CallContext,
    private readonly seal: CompactionSeal,
    readonly accept: ((t: ResolvedTarget) => boolean) | undefined,
  ) {}

  translator(): ResponsesFromChatTranslator {
    return (this.translated ??= new ResponsesFromChatTranslator(summaryRequest(this.client), this.ctx));
  }

  operation(t: ResolvedTarget): Operation {
    return t.provider.responsesNative ? 'responses_compact' : 'chat';
  }

  body(t: ResolvedTarget): Body {
    return t.provider.responsesNative ? this.client : this.translator().chat.chat;
  }

  shape(b: Body, t: ResolvedTarget, ctx: CallContext): void {
    // The compact API takes no output cap: a native target is sent the client's body as it is.
    if (t.provider.responsesNative) return;
    if (ctx.outputCap !== undefined) capChatOutput(b, ctx.outputCap, t.provider.kind);
    b.stream = false;
    delete b.stream_options;
  }

  relay(ctx: CallContext, up: UpstreamResponse): JsonDialect {
    if (up.target.provider.responsesNative) return PASS_THROUGH_JSON.responses_compact;
    return new CompactedFromChatJson(compactionOrigin(ctx, this.seal, up.target, this.client.model), this.client);
  }
}
