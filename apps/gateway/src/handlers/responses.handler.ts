import { Injectable } from '@nestjs/common';
import {
  CompactionFromChatJson,
  CompactionFromChatObserver,
  CompactionSeal,
  JsonDialect,
  OpenAIResponsesObserver,
  Operation,
  PASS_THROUGH_JSON,
  ResponsesFromChatObserver,
  ResponsesFromChatTranslator,
  SseObserver,
  hasCompactionTrigger,
  summaryRequest,
  withoutGatewayReasoning,
} from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import type { CallContext } from '../pipeline/call-context';
import type { Body, CallPlan, EndpointHandler } from '../pipeline/call-plan';
import { capChatOutput, capResponsesOutput } from '../pipeline/output-cap';
import { maxOutputOf } from '../pipeline/resolve.step';
import { compactionOrigin } from './compaction.origin';
import { responsesRequestOf } from './responses-request';
import { movedAccount, withoutSealedItems } from './sealed-items';

const OUTPUT_FIELDS = ['max_output_tokens'];

/**
 * `POST /v1/responses` (what Codex CLI speaks). Providers that serve the Responses API natively get the
 * request passed through with only the model rewritten; chat-only providers (Ollama, OpenRouter by default)
 * get a faithful translation both ways (libs/providers/src/dialects, translate).
 */
@Injectable()
export class ResponsesHandler implements EndpointHandler {
  readonly endpoint = 'responses';

  constructor(private readonly seal: CompactionSeal) {}

  plan(client: Body, ctx: CallContext): CallPlan {
    const { body, accept, translateNow } = responsesRequestOf(client, ctx, this.seal);
    const plan = new ResponsesPlan(body, maxOutputOf(body, OUTPUT_FIELDS), ctx, accept, hasCompactionTrigger(body) ? this.seal : undefined);
    if (translateNow) plan.translator();
    return plan;
  }
}

class ResponsesPlan implements CallPlan {
  readonly stream: boolean;
  readonly choices = 1;
  private translated?: ResponsesFromChatTranslator;
  private unsealed?: { body: Body; dropped: number };

  constructor(
    private readonly client: Body,
    readonly maxOutput: number | undefined,
    private readonly ctx: CallContext,
    readonly accept: ((t: ResolvedTarget) => boolean) | undefined,
    /** Set for remote compaction (`compaction_trigger`): a chat-only target summarises, the gateway seals the item. */
    private readonly compacting: CompactionSeal | undefined,
  ) {
    this.stream = client.stream === true;
  }

  /** Responses → chat, translated once, on first need. */
  translator(): ResponsesFromChatTranslator {
    return (this.translated ??= new ResponsesFromChatTranslator(this.compacting ? summaryRequest(this.client) : this.client, this.ctx));
  }

  operation(t: ResolvedTarget): Operation {
    return t.provider.responsesNative ? 'responses' : 'chat';
  }

  body(t: ResolvedTarget): Body {
    if (!t.provider.responsesNative) return this.translator().forProvider(t.provider.kind).body;
    if (!this.ctx.unseal && !movedAccount(this.ctx.home, t)) {
      this.ctx.sealedDropped = 0;
      return this.client;
    }
    // Another account than the one that sealed them (the session moved, or the upstream refused them already):
    // they would only make it refuse the whole request.
    const { body, dropped } = (this.unsealed ??= withoutSealedItems(this.client));
    this.ctx.sealedDropped = dropped;
    return body;
  }

  shape(b: Body, t: ResolvedTarget, ctx: CallContext): void {
    if (t.provider.responsesNative) {
      if (ctx.outputCap !== undefined) capResponsesOutput(b, ctx.outputCap);
      // Reasoning a chat provider made (via the gateway) cannot be decrypted by a native one: not sent to fail.
      const input = withoutGatewayReasoning(b.input);
      if (input) b.input = input;
      return;
    }
    if (ctx.outputCap !== undefined) capChatOutput(b, ctx.outputCap, t.provider.kind);
    b.stream = this.stream;
    if (this.stream) b.stream_options = { include_usage: true };
    else delete b.stream_options;
  }

  relay(ctx: CallContext, up: UpstreamResponse): JsonDialect | SseObserver {
    const p = up.target.provider;
    if (!p.responsesNative && this.compacting) {
      const origin = compactionOrigin(ctx, this.compacting, up.target, this.client.model);
      return this.stream ? new CompactionFromChatObserver(ctx, p, origin) : new CompactionFromChatJson(origin);
    }
    if (!p.responsesNative) {
      // What the serving provider could not be given is told to the client, the log line and the metrics.
      const dropped = this.translator().forProvider(p.kind).dropped;
      if (dropped.length) ctx.dropped = dropped;
      return this.stream ? new ResponsesFromChatObserver(ctx, p, this.translator()) : this.translator();
    }
    if (!this.stream) return PASS_THROUGH_JSON.responses;
    return new OpenAIResponsesObserver(ctx, p.adapter, `resp_${ctx.requestId.replace(/^req_/, '')}`, ctx.model);
  }
}
