import { Injectable, Logger } from '@nestjs/common';
import { Errors, OpenAIError, isObject } from '@gw/common';
import { JsonDialect, SSE_HEADERS, SseObserver, SseReader, isByteObserver } from '@gw/providers';
import type { ClientSink } from './client-sink';
import type { UpstreamResponse } from '../proxy/upstream.dispatcher';
import { upstreamNetworkError } from '../proxy/upstream-error';
import { CallContext, ClientGone } from './call-context';
import { writeHead } from './response-head';
import { SettleStep } from './settle.step';

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * Step 5: the upstream's answer to the client, whatever the dialect: one JSON relay and one SSE relay. The
 * dialect (libs/providers/src/dialects) knows the wire format: where usage is, whether a stream finished,
 * how a failure is told; the relay knows the client: head, back-pressure, cut-short streams, estimates.
 */
@Injectable()
export class RelayStep {
  private readonly logger = new Logger('Proxy');

  constructor(private readonly settle: SettleStep) {}

  run(ctx: CallContext, res: ClientSink, up: UpstreamResponse, dialect: JsonDialect | SseObserver): Promise<void> {
    return dialect.kind === 'sse' ? this.relaySse(ctx, res, up, dialect) : this.relayJson(ctx, res, up, dialect);
  }

  /**
   * Non-stream: the upstream bytes go to the client unchanged (usage read out of them), unless the dialect or
   * the provider's adapter rewrites the answer. An answer without usage is not free: its output is estimated
   * from its size (about 4 bytes a token).
   */
  async relayJson(ctx: CallContext, res: ClientSink, up: UpstreamResponse, dialect: JsonDialect): Promise<void> {
    const buf = Buffer.from(await up.res.body.arrayBuffer());
    ctx.markFirstByte();
    const text = buf.toString('utf8');
    const adapter = up.target.provider.adapter;
    let json = parseUpstreamObject(up, text);
    if (adapter.response) json = adapter.response(up.op, json);
    ctx.usage = adapter.usage(dialect.op, json.usage);
    ctx.usageReported = isObject(json.usage);
    ctx.noteServiceTier(json.service_tier);
    const rewritten = dialect.rewrite ? dialect.rewrite(json) : adapter.response ? JSON.stringify(json) : undefined;
    if (!ctx.usageReported) this.estimateIfUnreported(ctx, dialect.op === 'embeddings' ? 0 : Math.ceil((dialect.rewrite ? text.length : buf.length) / 4));
    const status = dialect.rewrite ? 200 : up.res.statusCode;
    ctx.status = status;
    writeHead(ctx, res, status, JSON_HEADERS);
    this.settle.end(ctx, res, rewritten ?? buf);
  }

  /**
   * A stream relayed event by event as it arrives, written with back-pressure (a slow client slows the
   * upstream read instead of buffering). The observer says what each batch of events becomes and whether the
   * stream finished; one that broke after its head (never retried) ends with the observer's failure event and
   * is metered on an estimate of what was streamed. A pass-through dialect (an `SseByteObserver`) takes the
   * byte path unless the adapter rewrites events: the upstream's bytes go out whole event by whole event,
   * never decoded to strings (issue 16: decoding, concatenating and re-encoding were most of a stream's CPU).
   */
  async relaySse(ctx: CallContext, res: ClientSink, up: UpstreamResponse, observer: SseObserver): Promise<void> {
    ctx.streamed = true;
    ctx.status = observer.headStatus ?? up.res.statusCode;
    writeHead(ctx, res, ctx.status, SSE_HEADERS);
    res.flushHeaders();
    const adapter = up.target.provider.adapter;
    let ended = false;
    try {
      const preamble = observer.start();
      if (preamble) await write(res, preamble);
      if (isByteObserver(observer) && !adapter.chunk) {
        for await (const bytes of up.res.body) {
          ctx.markFirstByte();
          const out = observer.bytes(bytes as Buffer);
          if (out.length) await write(res, out);
        }
        const tail = observer.bytesEnd();
        if (tail) await write(res, tail);
      } else {
        const reader = new SseReader();
        for await (const bytes of up.res.body) {
          ctx.markFirstByte();
          const events = reader.push(bytes as Buffer);
          const out = observer.events(adapter.chunk ? events.map((e) => adapter.chunk!(up.op, e)) : events);
          if (out) await write(res, out);
        }
        const rest = reader.end();
        const tail = observer.events(adapter.chunk ? rest.map((e) => adapter.chunk!(up.op, e)) : rest);
        if (tail) await write(res, tail);
      }
      const closing = observer.end();
      ended = true;
      if (closing) await write(res, closing);
      this.estimateIfUnreported(ctx, observer.deltas);
      this.settle.end(ctx, res);
    } catch (e) {
      if (ended) throw e;
      const err = this.streamError(ctx, up, e, observer.deltas);
      if (!res.writableEnded && !res.destroyed) {
        res.write(observer.failure(err));
        this.settle.end(ctx, res);
      }
    }
  }

  /**
   * Why a stream broke after its head, recorded on ctx, with the usage of what was streamed estimated; throws
   * ClientGone if the client left. Our idle or total timeout is a 504, shutdown a 503, an upstream that went
   * away a 502 `stream_error`.
   */
  private streamError(ctx: CallContext, up: UpstreamResponse, e: unknown, deltas: number): OpenAIError {
    if (!ctx.usageReported) ctx.estimateCutShort(deltas);
    if (ctx.clientGone) throw new ClientGone();
    const reason: unknown = ctx.abort.signal.aborted ? ctx.abort.signal.reason : e;
    const p = up.target.provider;
    let err: OpenAIError;
    if (reason instanceof OpenAIError) err = reason;
    else if ((reason as { code?: string } | undefined)?.code === 'UND_ERR_BODY_TIMEOUT') err = upstreamNetworkError(p, reason);
    else err = Errors.upstream(502, p.name, `stream failed: ${(reason as Error)?.message ?? reason}`, 'stream_error', 'server_error');
    ctx.status = err.getStatus();
    ctx.errorCode = err.body.error.code;
    return err;
  }

  /** An answer that reported no usage (a provider that ignores `include_usage`) is metered on an estimate. */
  private estimateIfUnreported(ctx: CallContext, deltas: number): void {
    if (ctx.usageReported) return;
    ctx.estimateCutShort(deltas);
    this.logger.debug(`request ${ctx.requestId}: ${ctx.target?.provider.name ?? 'upstream'} streamed no usage; metered on an estimate`);
  }
}

/** Writes respecting back-pressure: resolves once the client drained (or left). */
async function write(res: ClientSink, data: string | Buffer): Promise<void> {
  if (!res.write(data) && !res.writableEnded && !res.destroyed) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
}

/** A non-stream upstream answer must be a JSON object: anything else is the provider's fault (502). */
function parseUpstreamObject(up: UpstreamResponse, text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw Errors.upstream(502, up.target.provider.name, 'answered with a body that is not JSON', 'bad_upstream_response', 'server_error');
  }
  if (!isObject(json)) {
    throw Errors.upstream(502, up.target.provider.name, 'answered with JSON that is not an object', 'bad_upstream_response', 'server_error');
  }
  return json;
}
