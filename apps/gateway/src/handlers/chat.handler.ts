import { Injectable } from '@nestjs/common';
import { Errors, isObject } from '@gw/common';
import { OpenAIChatObserver, PASS_THROUGH_JSON } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import type { CallContext } from '../pipeline/call-context';
import type { Body, CallPlan, EndpointHandler } from '../pipeline/call-plan';
import { capChatOutput } from '../pipeline/output-cap';
import { choicesOf, maxOutputOf } from '../pipeline/resolve.step';

const OUTPUT_FIELDS = ['max_completion_tokens', 'max_tokens'];

/** `POST /v1/chat/completions`: passed through to every target as chat, relayed in the OpenAI chat dialect. */
@Injectable()
export class ChatHandler implements EndpointHandler {
  readonly endpoint = 'chat';

  plan(body: Body): CallPlan {
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw Errors.badRequest('`messages` must be a non-empty array.', 'messages');
    }
    const badMessage = body.messages.findIndex((m) => !isObject(m));
    if (badMessage !== -1) throw Errors.badRequest(`\`messages[${badMessage}]\` must be an object.`, `messages[${badMessage}]`);
    if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options)) {
      throw Errors.badRequest('`stream_options` must be an object.', 'stream_options');
    }
    return new ChatPlan(body, maxOutputOf(body, OUTPUT_FIELDS), choicesOf(body));
  }
}

class ChatPlan implements CallPlan {
  readonly stream: boolean;

  constructor(
    private readonly client: Body,
    readonly maxOutput: number | undefined,
    readonly choices: number,
  ) {
    this.stream = client.stream === true;
  }

  operation(): 'chat' {
    return 'chat';
  }

  body(): Body {
    return this.client;
  }

  shape(b: Body, t: ResolvedTarget, ctx: CallContext): void {
    if (ctx.outputCap !== undefined) capChatOutput(b, ctx.outputCap, t.provider.kind);
    // Usage is always metered: asked for, and dropped again by the observer if the client did not ask.
    if (this.stream) b.stream_options = { ...(this.client.stream_options ?? {}), include_usage: true };
  }

  relay(ctx: CallContext, up: UpstreamResponse): OpenAIChatObserver | typeof PASS_THROUGH_JSON.chat {
    if (!this.stream) return PASS_THROUGH_JSON.chat;
    const wantsUsage = (this.client.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    return new OpenAIChatObserver(ctx, up.target.provider.adapter, wantsUsage);
  }
}
