import { Injectable } from '@nestjs/common';
import { Errors, OpenAIError, isObject } from '@gw/common';
import {
  ChatCompletion,
  ChatCompletionChunk,
  ChatToResponsesStream,
  ResponsesRequest,
  ResponsesToChatResult,
  chatCompletionToResponse,
  responsesRequestToChat,
  sseFrame,
} from '@gw/providers';
import { ResolvedTarget } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { CallContext } from '../proxy/call-context';
import { ProxyService, SSE_HEADERS, parseUpstreamObject } from '../proxy/proxy.service';
import { capChatOutput, capResponsesOutput } from '../proxy/output-cap';
import { sseData } from '../proxy/sse.reader';
import { scrubSecrets } from '../proxy/upstream-error';
import { UpstreamResponse } from '../proxy/upstream.dispatcher';
import { validateResponsesRequest } from './responses.validation';

type Body = Record<string, unknown>;

/** Events that end a Responses stream and carry the final usage. */
const TERMINAL = /"type"\s*:\s*"response\.(completed|incomplete|failed)"/;
const RESPONSE_ID = /"id"\s*:\s*"(resp_[^"]+)"/;

/**
 * `POST /v1/responses` (what Codex CLI speaks). Providers that serve the Responses API natively get
 * the request passed through with only the model rewritten; chat-only providers (Ollama, OpenRouter
 * by default) get a faithful translation both ways (libs/providers/src/translate).
 */
@Injectable()
export class ResponsesService {
  constructor(private readonly proxy: ProxyService) {}

  async handle(req: Request, res: Response, principal: Principal): Promise<void> {
    const ctx = this.proxy.begin(req, res, principal, 'responses');
    try {
      const body = this.proxy.resolve(ctx, req.body) as Body;
      validateResponsesRequest(body);
      const maxOutput = this.proxy.maxOutputTokens(body, 'max_output_tokens');
      // Translation is stateless: a chat-only provider cannot continue a stored response, so such a
      // request goes to the route's native targets only (never silently dropping the reference on fallback).
      const continues = typeof body.previous_response_id === 'string' && body.previous_response_id !== '';
      const accept = continues ? (t: ResolvedTarget) => t.provider.responsesNative : undefined;
      const targets = ctx.route!.groups.flat();
      if (continues && !targets.some((t) => t.provider.responsesNative)) {
        throw Errors.badRequest('`previous_response_id` needs a provider that speaks the Responses API natively; send the full `input` history instead.', 'previous_response_id');
      }
      // Translated once, up front when a chat-only target may serve: a request the translation cannot
      // take is the client's 400, before anything is reserved or sent.
      let translated: ResponsesToChatResult | undefined;
      const translation = (): ResponsesToChatResult => (translated ??= translate(body));
      if (!continues && targets.some((t) => !t.provider.responsesNative)) translation();
      await this.proxy.admit(ctx, req, maxOutput);
      const stream = body.stream === true;
      const up = await this.proxy.send(
        ctx,
        (t) => (t.provider.responsesNative ? 'responses' : 'chat'),
        stream,
        (t) => (t.provider.responsesNative ? this.nativeBody(ctx, t, body) : this.chatBody(ctx, t, translation(), stream)),
        accept,
      );
      const native = up.target.provider.responsesNative;
      if (native && stream) await this.relayNativeStream(ctx, res, up);
      else if (native) await this.proxy.relayJson(ctx, res, up, 'responses');
      else if (stream) await this.relayTranslatedStream(ctx, res, up, body, translation());
      else await this.relayTranslatedJson(ctx, res, up, body, translation());
    } catch (e) {
      this.proxy.fail(ctx, res, e);
    } finally {
      this.proxy.finish(ctx);
    }
  }

  private nativeBody(ctx: CallContext, t: ResolvedTarget, body: Body): Body {
    const b = this.proxy.upstreamBody(ctx, 'responses', body, t);
    if (ctx.outputCap !== undefined) capResponsesOutput(b, ctx.outputCap);
    return b;
  }

  private chatBody(ctx: CallContext, t: ResolvedTarget, tr: ResponsesToChatResult, stream: boolean): Body {
    const b = this.proxy.upstreamBody(ctx, 'chat', tr.chat as unknown as Body, t);
    if (ctx.outputCap !== undefined) capChatOutput(b, ctx.outputCap, t.provider.kind);
    b.stream = stream;
    if (stream) b.stream_options = { include_usage: true };
    else delete b.stream_options;
    return b;
  }

  private translationContext(ctx: CallContext, body: Body, tr: ResponsesToChatResult) {
    return {
      responseId: `resp_${ctx.requestId.replace(/^req_/, '')}`,
      model: ctx.model ?? String(body.model),
      createdAt: Math.floor(ctx.startedAt.getTime() / 1000),
      customTools: tr.customTools,
      namespacedTools: tr.namespacedTools,
      request: body as unknown as ResponsesRequest,
    };
  }

  /** Native stream: events relayed as they arrive; usage read from the terminal event. */
  private async relayNativeStream(ctx: CallContext, res: Response, up: UpstreamResponse): Promise<void> {
    ctx.streamed = true;
    ctx.status = up.res.statusCode;
    this.proxy.writeHead(ctx, res, up.res.statusCode, SSE_HEADERS);
    res.flushHeaders();
    const adapter = up.target.provider.adapter;
    let deltas = 0;
    let seq = 0;
    let terminal = false;
    let responseId = `resp_${ctx.requestId.replace(/^req_/, '')}`;
    const handle = (events: string[]): string => {
      let out = '';
      for (const ev of events) {
        // Keep the upstream's id so a response.failed we emit names the same response.
        if (seq++ === 0) responseId = RESPONSE_ID.exec(ev)?.[1] ?? responseId;
        if (TERMINAL.test(ev)) {
          let j: unknown;
          try {
            j = JSON.parse(sseData(ev) ?? '');
          } catch {
            /* relay as is */
          }
          if (isObject(j)) {
            const usage = isObject(j.response) ? j.response.usage : undefined;
            if (isObject(usage)) {
              ctx.usage = adapter.usage('responses', usage);
              ctx.usageReported = true;
            }
            if (isObject(j.response)) ctx.noteServiceTier(j.response.service_tier);
            terminal = true;
            if (j.type === 'response.failed') {
              ctx.status = 502;
              ctx.errorCode = 'response_failed';
            }
          }
        } else if (ev.indexOf('.delta"') !== -1) {
          deltas++;
        }
        out += ev + '\n\n';
      }
      return out;
    };
    try {
      await this.proxy.pumpSse(ctx, res, up, handle);
      if (!terminal) throw new Error('upstream stream ended before response.completed');
      this.proxy.estimateIfUnreported(ctx, deltas);
      this.proxy.end(ctx, res);
    } catch (e) {
      this.endStreamWithFailure(ctx, res, up, e, deltas, (err) =>
        sseFrame('response.failed', {
          type: 'response.failed',
          sequence_number: seq + 1,
          response: { id: responseId, object: 'response', status: 'failed', model: ctx.model, output: [], error: err, usage: null },
        }),
      );
    }
  }

  /** Chat stream in, Responses events out. */
  private async relayTranslatedStream(ctx: CallContext, res: Response, up: UpstreamResponse, body: Body, tr: ResponsesToChatResult): Promise<void> {
    ctx.streamed = true;
    ctx.status = 200;
    this.proxy.writeHead(ctx, res, 200, SSE_HEADERS);
    res.flushHeaders();
    const translator = new ChatToResponsesStream(this.translationContext(ctx, body, tr));
    await this.proxy.write(res, translator.start().join(''));
    const adapter = up.target.provider.adapter;
    let deltas = 0;
    let finished = false;
    let sawDone = false;
    let sawFinish = false;
    const handle = (events: string[]): string => {
      let out = '';
      for (const ev of events) {
        const data = sseData(ev);
        if (data === undefined) continue; // comments such as OpenRouter's ": OPENROUTER PROCESSING"
        if (data.trim() === '[DONE]') {
          sawDone = true;
          continue;
        }
        const chunk = JSON.parse(data) as unknown;
        if (!isObject(chunk)) continue;
        const error = chunk.error;
        if (error !== undefined && error !== null) {
          const message = isObject(error) && typeof error.message === 'string' ? error.message : 'stream error';
          throw new OpenAIError(502, `${up.target.provider.name}: ${scrubSecrets(message.slice(0, 500), up.target.provider.credential)}`, 'server_error', 'upstream_error');
        }
        if (isObject(chunk.usage)) {
          ctx.usage = adapter.usage('chat', chunk.usage);
          ctx.usageReported = true;
          ctx.noteServiceTier(chunk.service_tier);
        }
        const choices = chunk.choices;
        if (Array.isArray(choices)) {
          if (choices.some((c) => isObject(c) && streamedSomething(c.delta))) deltas++;
          if (choices.some((c) => isObject(c) && typeof c.finish_reason === 'string' && c.finish_reason)) sawFinish = true;
        }
        const frames = translator.push(chunk as ChatCompletionChunk);
        for (let i = 0; i < frames.length; i++) out += frames[i];
      }
      return out;
    };
    try {
      await this.proxy.pumpSse(ctx, res, up, handle);
      // Neither [DONE] nor a finish_reason: the upstream went away mid-answer; never report it completed.
      if (!sawDone && !sawFinish) throw new Error('upstream stream ended before it finished');
      finished = true;
      await this.proxy.write(res, translator.finish().join(''));
      this.proxy.estimateIfUnreported(ctx, deltas);
      this.proxy.end(ctx, res);
    } catch (e) {
      if (finished) throw e;
      this.endStreamWithFailure(ctx, res, up, e, deltas, (err) => translator.fail(err).join(''));
    }
  }

  private async relayTranslatedJson(ctx: CallContext, res: Response, up: UpstreamResponse, body: Body, tr: ResponsesToChatResult): Promise<void> {
    const text = await up.res.body.text();
    ctx.markFirstByte();
    const completion = parseUpstreamObject(up, text) as unknown as ChatCompletion;
    ctx.usage = up.target.provider.adapter.usage('chat', completion.usage);
    ctx.usageReported = isObject(completion.usage);
    ctx.noteServiceTier((completion as { service_tier?: unknown }).service_tier);
    if (!ctx.usageReported) this.proxy.estimateIfUnreported(ctx, Math.ceil(text.length / 4));
    const response = chatCompletionToResponse(completion, this.translationContext(ctx, body, tr));
    ctx.status = 200;
    this.proxy.writeHead(ctx, res, 200, { 'content-type': 'application/json' });
    this.proxy.end(ctx, res, JSON.stringify(response));
  }

  /** A stream that broke after the first byte ends with an event the client can read, and is metered. */
  private endStreamWithFailure(ctx: CallContext, res: Response, up: UpstreamResponse, e: unknown, deltas: number, frame: (err: { code: string; message: string }) => string): void {
    const err = this.proxy.streamError(ctx, up, e, deltas);
    if (!res.writableEnded && !res.destroyed) {
      res.write(frame({ code: err.body.error.code ?? 'server_error', message: err.body.error.message }));
      this.proxy.end(ctx, res);
    }
  }

}

/** Responses → chat, with any failure of the translation on an odd request shape reported as the client's 400. */
function translate(body: Body): ResponsesToChatResult {
  try {
    return responsesRequestToChat(body as unknown as ResponsesRequest);
  } catch (e) {
    throw Errors.badRequest(`The request could not be translated for a chat-only provider: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Whether a chat delta carried output (about one token), for estimating a stream that reported no usage. */
function streamedSomething(delta: unknown): boolean {
  if (!isObject(delta)) return false;
  for (const k of ['content', 'refusal', 'reasoning', 'reasoning_content']) {
    const v = delta[k];
    if (typeof v === 'string' && v) return true;
  }
  return Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0;
}
