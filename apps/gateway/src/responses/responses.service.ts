import { Injectable } from '@nestjs/common';
import { Errors, OpenAIError } from '@gw/common';
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
import { ProxyService, SSE_HEADERS } from '../proxy/proxy.service';
import { SseReader, sseData } from '../proxy/sse.reader';
import { UpstreamResponse } from '../proxy/upstream.dispatcher';

type Body = Record<string, unknown>;

/** Events that end a Responses stream and carry the final usage. */
const TERMINAL = /"type":\s*"response\.(completed|incomplete|failed)"/;

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
      const input = body.input;
      if (input === undefined || (typeof input !== 'string' && !Array.isArray(input))) {
        throw Errors.badRequest('`input` must be a string or an array of input items.', 'input');
      }
      if (body.tools !== undefined && !Array.isArray(body.tools)) throw Errors.badRequest('`tools` must be an array.', 'tools');
      // Translation is stateless: a chat-only provider cannot continue a stored response.
      const chatOnly = ctx.route!.groups.every((g) => g.every((t) => !t.provider.responsesNative));
      if (body.previous_response_id && chatOnly) {
        throw Errors.badRequest('`previous_response_id` needs a provider that speaks the Responses API natively; send the full `input` history instead.', 'previous_response_id');
      }
      await this.proxy.admit(ctx, req, body.max_output_tokens);
      const stream = body.stream === true;
      // Translation is computed once, lazily, and shared by every chat-only target tried.
      let translated: ResponsesToChatResult | undefined;
      const translation = () => (translated ??= responsesRequestToChat(body as unknown as ResponsesRequest));
      const up = await this.proxy.send(
        ctx,
        (t) => (t.provider.responsesNative ? 'responses' : 'chat'),
        stream,
        (t) => (t.provider.responsesNative ? this.proxy.upstreamBody(ctx, 'responses', body, t) : this.chatBody(ctx, t, translation(), stream)),
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

  private chatBody(ctx: CallContext, t: ResolvedTarget, tr: ResponsesToChatResult, stream: boolean): Body {
    const b = this.proxy.upstreamBody(ctx, 'chat', tr.chat as unknown as Body, t);
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
    const reader = new SseReader();
    const adapter = up.target.provider.adapter;
    let deltas = 0;
    let seq = 0;
    let terminal = false;
    let responseId = `resp_${ctx.requestId.replace(/^req_/, '')}`;
    const handle = (events: string[]): string => {
      let out = '';
      for (const ev of events) {
        // Keep the upstream's id so a response.failed we emit names the same response.
        if (seq++ === 0) responseId = /"id":"(resp_[^"]+)"/.exec(ev)?.[1] ?? responseId;
        if (TERMINAL.test(ev)) {
          try {
            const j = JSON.parse(sseData(ev) ?? '') as { type?: string; response?: { usage?: unknown } };
            if (j.response?.usage) {
              ctx.usage = adapter.usage('responses', j.response.usage);
              ctx.usageReported = true;
            }
            terminal = true;
            if (j.type === 'response.failed') {
              ctx.status = 502;
              ctx.errorCode = 'response_failed';
            }
          } catch {
            /* relay as is */
          }
        } else if (ev.indexOf('.delta"') !== -1) {
          deltas++;
        }
        out += ev + '\n\n';
      }
      return out;
    };
    try {
      for await (const chunk of up.res.body) {
        ctx.markFirstByte();
        const out = handle(reader.push(chunk as Buffer));
        if (out) await this.proxy.write(res, out);
      }
      const rest = handle(reader.end());
      if (rest) await this.proxy.write(res, rest);
      if (!terminal) throw new Error('upstream stream ended before response.completed');
      res.end();
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
    const reader = new SseReader();
    const adapter = up.target.provider.adapter;
    let deltas = 0;
    let finished = false;
    const handle = (events: string[]): string => {
      let out = '';
      for (const ev of events) {
        const data = sseData(ev);
        if (data === undefined) continue; // comments such as OpenRouter's ": OPENROUTER PROCESSING"
        if (data === '[DONE]') continue;
        const chunk = JSON.parse(data) as ChatCompletionChunk & { error?: { message?: string; code?: unknown } };
        if (chunk.error) throw new OpenAIError(502, `${up.target.provider.name}: ${chunk.error.message ?? 'stream error'}`, 'server_error', 'upstream_error');
        if (chunk.usage) {
          ctx.usage = adapter.usage('chat', chunk.usage);
          ctx.usageReported = true;
        }
        deltas++;
        const frames = translator.push(chunk);
        for (let i = 0; i < frames.length; i++) out += frames[i];
      }
      return out;
    };
    try {
      for await (const c of up.res.body) {
        ctx.markFirstByte();
        const out = handle(reader.push(c as Buffer));
        if (out) await this.proxy.write(res, out);
      }
      const rest = handle(reader.end());
      if (rest) await this.proxy.write(res, rest);
      finished = true;
      await this.proxy.write(res, translator.finish().join(''));
      if (!ctx.usageReported && translator.usage) ctx.usage = translator.usage;
      res.end();
    } catch (e) {
      if (finished) throw e;
      this.endStreamWithFailure(ctx, res, up, e, deltas, (err) => translator.fail(err).join(''));
    }
  }

  private async relayTranslatedJson(ctx: CallContext, res: Response, up: UpstreamResponse, body: Body, tr: ResponsesToChatResult): Promise<void> {
    const text = await up.res.body.text();
    ctx.markFirstByte();
    let completion: ChatCompletion;
    try {
      completion = JSON.parse(text) as ChatCompletion;
    } catch {
      throw Errors.upstream(502, up.target.provider.name, 'answered with a body that is not JSON', 'bad_upstream_response', 'server_error');
    }
    ctx.usage = up.target.provider.adapter.usage('chat', completion.usage);
    ctx.usageReported = completion.usage !== undefined;
    const response = chatCompletionToResponse(completion, this.translationContext(ctx, body, tr));
    ctx.status = 200;
    this.proxy.writeHead(ctx, res, 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(response));
  }

  /** A stream that broke after the first byte ends with an event the client can read, and is metered. */
  private endStreamWithFailure(ctx: CallContext, res: Response, up: UpstreamResponse, e: unknown, deltas: number, frame: (err: { code: string; message: string }) => string): void {
    const err = this.proxy.streamError(ctx, up, e, deltas);
    if (!res.writableEnded && !res.destroyed) {
      res.write(frame({ code: err.body.error.code ?? 'server_error', message: err.body.error.message }));
      res.end();
    }
  }

}
