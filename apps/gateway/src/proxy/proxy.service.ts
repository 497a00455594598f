import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Errors, OpenAIError, bodyBytesOf, clientRequestIdOf, isObject, matchesAny, requestIdOf, toOpenAIError } from '@gw/common';
import { LimitsService } from '@gw/limits';
import { LedgerWriter, PriceTable } from '@gw/metering';
import { GatewayMetrics, annotateRequestLog, modelLabel } from '@gw/observability';
import { Operation } from '@gw/providers';
import { ResolvedTarget, RouteTable } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { CallContext, ClientGone, Endpoint } from './call-context';
import { MAX_MODEL_CHARS, MODEL_NAME, recordedModelName } from './model-name';
import { DrainService } from '../health/drain.service';
import { MAX_CHOICES, capChatOutput } from './output-cap';
import { SseReader, sseData } from './sse.reader';
import { upstreamNetworkError } from './upstream-error';
import { UpstreamDispatcher, UpstreamResponse } from './upstream.dispatcher';

type Body = Record<string, unknown>;

/** The largest output a request may ask for (`max_tokens` & co.); also what its reservation is capped at. */
export const MAX_OUTPUT_TOKENS = 10_000_000;

/** An event that may carry a usage block (`"usage": {`, whatever the spacing); confirmed by parsing it. */
export const USAGE_EVENT = /"usage"\s*:\s*\{/;
/** A chat chunk that streamed something (about one token each), for estimating a stream without usage. */
const CONTENT_EVENT = /"(?:content|arguments|refusal|reasoning|reasoning_content)"\s*:\s*"(?!")/;
/** A chat chunk that ends its choice (`"finish_reason": "stop"`, not `null`). */
const FINISH_EVENT = /"finish_reason"\s*:\s*"/;


export const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' };

/**
 * The data-plane pipeline shared by every endpoint:
 *   authenticated principal → validate → route (403/404) → admit against limits → dispatch (retry,
 *   fallback) → relay (JSON or SSE, chunk by chunk) → meter (one ledger row, whatever the end).
 * Nothing here waits on Postgres: keys, routes and prices are in memory, the ledger is batched.
 */
@Injectable()
export class ProxyService {
  private readonly logger = new Logger('Proxy');

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly routes: RouteTable,
    private readonly dispatcher: UpstreamDispatcher,
    private readonly limits: LimitsService,
    private readonly prices: PriceTable,
    private readonly ledger: LedgerWriter,
    private readonly metrics: GatewayMetrics,
    private readonly drain: DrainService,
  ) {
    metrics.watchLedger(ledger);
    metrics.watchPrices(prices);
  }

  // ───────────────────────────── lifecycle shared by all endpoints ─────────────────────────────

  begin(req: Request, res: Response, principal: Principal, endpoint: Endpoint): CallContext {
    const body = req.body as unknown;
    // Recorded (log line, ledger row) even when resolve() refuses it, so bounded here already.
    const model = recordedModelName(body && typeof body === 'object' ? (body as Body).model : undefined);
    const ctx = new CallContext(requestIdOf(req), principal, endpoint, model);
    ctx.clientRequestId = clientRequestIdOf(req);
    this.metrics.started(endpoint);
    // The request's one log line (written when the response ends): metadata only, never prompt or completion.
    annotateRequestLog(res, () => ({
      tenant: principal.tenantName,
      keyPrefix: principal.keyPrefix,
      endpoint,
      model: ctx.model,
      provider: ctx.target?.provider.name ?? null,
      upstreamModel: ctx.upstreamModel,
      status: ctx.status,
      errorCode: ctx.errorCode,
      streamed: ctx.streamed,
      attempts: ctx.attempts,
      ttfbMs: ctx.ttfbMs,
      inputTokens: ctx.usage.inputTokens,
      outputTokens: ctx.usage.outputTokens,
    }));
    // The client leaving aborts the upstream at once: no orphaned upstream streams.
    res.on('close', () => {
      if (!res.writableFinished && !ctx.abort.signal.aborted) ctx.abort.abort(new ClientGone());
    });
    // A client that hung up before we got here (e.g. during auth) fired its 'close' already: meter it as 499 now.
    if (req.socket?.destroyed && !ctx.abort.signal.aborted) ctx.abort.abort(new ClientGone());
    // The default budget until the route is known (resolve() applies the route's own).
    ctx.setDeadline(this.cfg.upstreamTotalTimeoutMs, () => Errors.timeout(`total request time of ${this.cfg.upstreamTotalTimeoutMs} ms exceeded`));
    res.once('close', () => ctx.clearDeadline());
    this.drain.track(ctx);
    return ctx;
  }

  /** Validates the common fields and resolves the route; throws OpenAI-shaped 400/403/404. */
  resolve(ctx: CallContext, body: unknown): Body {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw Errors.badRequest('The request body must be a JSON object.');
    const b = body as Body;
    if (typeof b.model !== 'string' || !b.model.trim()) throw Errors.badRequest('You must provide a model parameter.', 'model', 'missing_required_parameter');
    if (b.model.length > MAX_MODEL_CHARS) throw Errors.badRequest(`\`model\` must be at most ${MAX_MODEL_CHARS} characters.`, 'model');
    if (!MODEL_NAME.test(b.model)) {
      throw Errors.badRequest('`model` may contain only letters, digits and the characters - _ . : / @ +', 'model');
    }
    if (b.stream !== undefined && typeof b.stream !== 'boolean') throw Errors.badRequest('`stream` must be a boolean.', 'stream');
    if (b.service_tier !== undefined && b.service_tier !== null && typeof b.service_tier !== 'string') {
      throw Errors.badRequest('`service_tier` must be a string.', 'service_tier');
    }
    ctx.noteRequestedTier(b.service_tier);
    const model = b.model;
    if (!matchesAny(ctx.principal.allowedModels, model)) {
      throw Errors.forbidden(`This API key is not allowed to use model \`${model}\`.`, 'model_not_allowed');
    }
    const route = this.routes.resolve(ctx.principal.tenantId, model);
    if (!route) throw Errors.modelNotFound(model);
    if (!route.groups.length) throw Errors.unavailable(`No enabled provider serves model \`${model}\` right now.`);
    ctx.route = route;
    const total = route.settings.totalTimeoutMs;
    if (total) ctx.setDeadline(total, () => Errors.timeout(`total request time of ${total} ms exceeded`));
    return b;
  }

  /**
   * The output cap the client asked for in `fields`, each checked: an integer in [1, MAX_OUTPUT_TOKENS], else
   * 400 naming the field. `null` counts as not set. The largest wins: providers read different fields
   * (Ollama and OpenRouter only `max_tokens`), so a small one beside a large one must not size the reservation.
   */
  maxOutputTokens(body: Body, ...fields: string[]): number | undefined {
    let out: number | undefined;
    for (const f of fields) {
      const v = body[f];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_OUTPUT_TOKENS) {
        throw Errors.badRequest(`\`${f}\` must be an integer between 1 and ${MAX_OUTPUT_TOKENS}.`, f, 'invalid_value');
      }
      out = Math.max(out ?? 0, v);
    }
    return out;
  }

  /** `n` (chat): how many choices, each up to the output cap, so a multiplier of the worst case. */
  choices(body: Body): number {
    const v = body.n;
    if (v === undefined || v === null) return 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CHOICES) {
      throw Errors.badRequest(`\`n\` must be an integer between 1 and ${MAX_CHOICES}.`, 'n', 'invalid_value');
    }
    return v;
  }

  /**
   * Reserves an estimate against limits and budgets before anything is forwarded: the prompt from the
   * body's inflated size (what is forwarded, whatever the Content-Encoding) plus `choices` × the output cap.
   * When the budget clamped the reservation (nothing else in flight, see budget.decision.ts), the output
   * cap that fits it is kept on `ctx.outputCap` for the relay to write into the forwarded body.
   */
  async admit(ctx: CallContext, req: Request, maxOutput: unknown, choices = 1): Promise<void> {
    // Counted by the body parser after inflation; the fallback is for a body that did not come through it.
    const bytes = bodyBytesOf(req) ?? Buffer.byteLength(JSON.stringify(req.body ?? ''));
    const promptTokens = Math.ceil(bytes / 4);
    ctx.promptEstimate = promptTokens;
    // 0: an endpoint without output (embeddings); unset: the default reservation.
    const out =
      maxOutput === 0
        ? 0
        : typeof maxOutput === 'number' && Number.isFinite(maxOutput) && maxOutput > 0
          ? Math.min(Math.ceil(maxOutput), MAX_OUTPUT_TOKENS)
          : this.cfg.defaultMaxOutputTokens;
    const firstTarget = ctx.route!.groups[0][0];
    const model = firstTarget.model ?? ctx.model!;
    this.prices.assertPriced([model, ctx.model], firstTarget.provider.kind, this.prices.policyFor(ctx.principal.keyLimits, ctx.principal.tenantLimits));
    // Priced at the dearest target the request may reach: a fallback (or a target the client steers to, e.g.
    // with `previous_response_id`) must not be reserved at the price of a cheap (or local, free) first one.
    const targets = ctx.route!.groups.flat();
    const costAt = (cap: number) => {
      const usage = { inputTokens: promptTokens, outputTokens: cap * choices, cachedTokens: 0 };
      let max = 0;
      for (const t of targets) max = Math.max(max, this.prices.cost([t.model ?? ctx.model, ctx.model], usage, { ...this.pricing(ctx, t), estimate: true }));
      return max;
    };
    const costUsd = costAt(out);
    const minOut = Math.min(out, this.cfg.budgetMinOutputTokens);
    ctx.admission = await this.limits.admit(ctx.principal, {
      model,
      tokens: promptTokens + Math.min(out * choices, MAX_OUTPUT_TOKENS),
      costUsd,
      minCostUsd: minOut < out ? costAt(minOut) : costUsd,
    });
    if (ctx.admission.clamped) ctx.outputCap = this.capFor(ctx.admission.reservedUsd, costAt, minOut, out);
  }

  /** The largest output cap in [minOut, out] whose worst case fits `usd` (prices are linear in tokens). */
  private capFor(usd: number, costAt: (cap: number) => number, minOut: number, out: number): number {
    const base = costAt(0);
    const perToken = (costAt(out) - base) / out;
    let cap = perToken > 0 ? Math.floor((usd - base) / perToken) : out;
    cap = Math.max(minOut, Math.min(out, cap));
    // rounding (money is counted in 1e-8 USD) must never leave the cap a token above what was reserved
    while (cap > minOut && costAt(cap) > usd) cap--;
    return cap;
  }

  send(
    ctx: CallContext,
    op: Operation | ((t: ResolvedTarget) => Operation),
    stream: boolean,
    bodyFor: (t: ResolvedTarget) => Body,
    accept?: (t: ResolvedTarget) => boolean,
  ): Promise<UpstreamResponse> {
    ctx.onDispatch = () => this.journalSent(ctx, stream);
    return this.dispatcher.send(ctx, op, stream, bodyFor, accept);
  }

  /**
   * On the first upstream attempt: the journal records the request with its reservation, so that it is
   * billed (at that reservation, `gateway_restarted`) if this process dies before it finishes.
   */
  private journalSent(ctx: CallContext, stream: boolean): void {
    ctx.onDispatch = undefined;
    const est = ctx.admission?.estimate;
    const input = ctx.promptEstimate;
    this.ledger.sent({
      requestId: ctx.requestId,
      clientRequestId: ctx.clientRequestId,
      tenantId: ctx.principal.tenantId,
      keyId: ctx.principal.keyId,
      routeId: ctx.route?.id ?? null,
      providerId: ctx.target?.provider.id ?? null,
      endpoint: ctx.endpoint,
      requestedModel: ctx.model,
      upstreamModel: ctx.upstreamModel,
      streamed: stream,
      startedAt: ctx.startedAt,
      inputTokens: input,
      outputTokens: Math.max(0, (est?.tokens ?? input) - input),
      costUsd: est?.costUsd ?? 0,
    });
  }

  /** The upstream body with the model rewritten and the provider's own adjustments applied. */
  upstreamBody(ctx: CallContext, op: Operation, body: Body, t: ResolvedTarget): Body {
    const out: Body = { ...body, model: t.model ?? body.model };
    t.provider.adapter.prepare(op, out, t.provider, { providerPreferences: ctx.route?.settings.providerPreferences });
    return out;
  }

  writeHead(ctx: CallContext, res: Response, status: number, headers: Record<string, string>): void {
    const t = ctx.target;
    const h: Record<string, string> = { ...headers, ...(ctx.admission?.headers ?? {}) };
    // The budget only afforded this much output (docs/limits.md): say so, or a cut-off answer is a mystery.
    if (ctx.outputCap !== undefined) h['x-gateway-output-cap'] = String(ctx.outputCap);
    if (t) {
      h['x-gateway-provider'] = t.provider.name;
      h['x-gateway-target'] = `${t.provider.name}/${ctx.upstreamModel ?? ''}`;
    }
    res.writeHead(status, h);
  }

  /**
   * Reads an upstream SSE body event by event as it arrives and writes whatever `handle` makes of each
   * batch of complete events (relay, filter or translate). Shared by every streaming relay.
   */
  async pumpSse(ctx: CallContext, res: Response, up: UpstreamResponse, handle: (events: string[]) => string): Promise<void> {
    const reader = new SseReader();
    for await (const chunk of up.res.body) {
      ctx.markFirstByte();
      const out = handle(reader.push(chunk as Buffer));
      if (out) await this.write(res, out);
    }
    const rest = handle(reader.end());
    if (rest) await this.write(res, rest);
  }

  /** Writes respecting back-pressure, so a slow client slows the upstream read instead of buffering. */
  async write(res: Response, data: string | Buffer): Promise<void> {
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

  /** Sends an error as JSON if nothing was sent yet; records status and code either way. */
  fail(ctx: CallContext, res: Response, e: unknown): void {
    if (ctx.clientGone || (e instanceof ClientGone)) {
      ctx.status = 499;
      ctx.errorCode = 'client_closed_request';
      // Once dispatched the upstream has the prompt (and bills it): metered like an aborted stream, never as free.
      if (ctx.attempts > 0 && !ctx.usageReported) this.estimateCutShort(ctx, 0);
      return;
    }
    const reason = ctx.abort.signal.aborted ? ctx.abort.signal.reason : undefined;
    const err = reason instanceof OpenAIError ? reason : toOpenAIError(e);
    ctx.status = err.getStatus();
    ctx.errorCode = err.body.error.code ?? err.body.error.type;
    if (ctx.status >= 500 && !(e instanceof OpenAIError) && !(reason instanceof OpenAIError)) {
      this.logger.error(`request ${ctx.requestId}: ${(e as Error)?.stack ?? String(e)}`);
    }
    if (res.headersSent) {
      if (!res.writableEnded) this.end(ctx, res);
      return;
    }
    this.writeHead(ctx, res, ctx.status, { 'content-type': 'application/json', ...err.headers });
    this.end(ctx, res, JSON.stringify(err.body));
  }

  /**
   * Ends the response, metering the request first: its ledger row is journaled before the last byte goes
   * out, so a client that has its whole answer always has a row, even if the process is killed right after.
   */
  end(ctx: CallContext, res: Response, body?: string | Buffer): void {
    this.finish(ctx);
    if (body === undefined) res.end();
    else res.end(body);
  }

  /** What prices a request besides its model: the serving provider's kind and the service tier. */
  private pricing(ctx: CallContext, t: ResolvedTarget | undefined = ctx.target) {
    return { provider: t?.provider.kind, serviceTier: ctx.serviceTier };
  }

  /**
   * Exactly one ledger row and one metrics observation per authenticated request: at the end of the
   * response (`end`), or in the handler's `finally` for a request whose response never ended (client gone).
   */
  finish(ctx: CallContext): void {
    if (ctx.finished) return;
    ctx.finished = true;
    ctx.onDispatch = undefined;
    const u = ctx.usage;
    const costUsd = this.prices.cost([ctx.upstreamModel, ctx.model], u, this.pricing(ctx));
    const tokens = u.inputTokens + u.outputTokens;
    if (ctx.admission) {
      if (tokens > 0 || costUsd > 0) ctx.admission.settle({ tokens, costUsd });
      else ctx.admission.release();
    }
    const finishedAt = new Date();
    const latencyMs = Math.round(performance.now() - ctx.t0);
    const t = ctx.target;
    this.ledger.record({
      requestId: ctx.requestId,
      clientRequestId: ctx.clientRequestId,
      tenantId: ctx.principal.tenantId,
      keyId: ctx.principal.keyId,
      routeId: ctx.route?.id ?? null,
      providerId: t?.provider.id ?? null,
      endpoint: ctx.endpoint,
      requestedModel: ctx.model,
      upstreamModel: ctx.upstreamModel,
      status: ctx.status,
      errorCode: ctx.errorCode,
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      cachedTokens: u.cachedTokens,
      costUsd,
      latencyMs,
      ttfbMs: ctx.ttfbMs,
      streamed: ctx.streamed,
      attempts: ctx.attempts,
      startedAt: ctx.startedAt,
      finishedAt,
    });
    ctx.clearDeadline();
    this.drain.untrack(ctx);
    this.metrics.finished({
      tenant: ctx.principal.tenantName,
      model: modelLabel(ctx.model, ctx.route?.pattern, ctx.status < 400),
      provider: t?.provider.name ?? 'none',
      endpoint: ctx.endpoint,
      status: ctx.status,
      streamed: ctx.streamed,
      durationMs: latencyMs,
      ttfbMs: ctx.ttfbMs,
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      costUsd,
      errorCode: ctx.errorCode,
    });
  }

  // ───────────────────────────── endpoints ─────────────────────────────

  async chat(req: Request, res: Response, principal: Principal): Promise<void> {
    const ctx = this.begin(req, res, principal, 'chat');
    try {
      const body = this.resolve(ctx, req.body);
      if (!Array.isArray(body.messages) || body.messages.length === 0) {
        throw Errors.badRequest('`messages` must be a non-empty array.', 'messages');
      }
      const badMessage = body.messages.findIndex((m) => !isObject(m));
      if (badMessage !== -1) throw Errors.badRequest(`\`messages[${badMessage}]\` must be an object.`, `messages[${badMessage}]`);
      if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options)) {
        throw Errors.badRequest('`stream_options` must be an object.', 'stream_options');
      }
      await this.admit(ctx, req, this.maxOutputTokens(body, 'max_completion_tokens', 'max_tokens'), this.choices(body));
      const stream = body.stream === true;
      const clientWantsUsage = stream && (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      const up = await this.send(ctx, 'chat', stream, (t) => {
        const b = this.upstreamBody(ctx, 'chat', body, t);
        if (ctx.outputCap !== undefined) capChatOutput(b, ctx.outputCap, t.provider.kind);
        // Usage is always metered: ask for it, and strip it again below if the client did not.
        if (stream) b.stream_options = { ...((body.stream_options as object) ?? {}), include_usage: true };
        return b;
      });
      if (stream) await this.relayChatStream(ctx, res, up, clientWantsUsage);
      else await this.relayJson(ctx, res, up, 'chat');
    } catch (e) {
      this.fail(ctx, res, e);
    } finally {
      this.finish(ctx);
    }
  }

  async embeddings(req: Request, res: Response, principal: Principal): Promise<void> {
    const ctx = this.begin(req, res, principal, 'embeddings');
    try {
      const body = this.resolve(ctx, req.body);
      const input = body.input;
      if (input === undefined || input === null || input === '' || (Array.isArray(input) && input.length === 0)) {
        throw Errors.badRequest('`input` must be a non-empty string or array.', 'input');
      }
      await this.admit(ctx, req, 0);
      const up = await this.send(ctx, 'embeddings', false, (t) => this.upstreamBody(ctx, 'embeddings', body, t));
      await this.relayJson(ctx, res, up, 'embeddings');
    } catch (e) {
      this.fail(ctx, res, e);
    } finally {
      this.finish(ctx);
    }
  }

  // ───────────────────────────── relays ─────────────────────────────

  /** Non-stream: the upstream bytes go to the client unchanged; we only read the usage out of them. */
  async relayJson(ctx: CallContext, res: Response, up: UpstreamResponse, op: Operation): Promise<void> {
    const buf = Buffer.from(await up.res.body.arrayBuffer());
    ctx.markFirstByte();
    const json = parseUpstreamObject(up, buf.toString('utf8'));
    ctx.usage = up.target.provider.adapter.usage(op, json.usage);
    ctx.usageReported = isObject(json.usage);
    ctx.noteServiceTier(json.service_tier);
    // An answer without usage is not free: metered like a stream without usage, its output estimated from
    // the answer's size (about 4 bytes a token).
    if (!ctx.usageReported) this.estimateIfUnreported(ctx, op === 'embeddings' ? 0 : Math.ceil(buf.length / 4));
    ctx.status = up.res.statusCode;
    this.writeHead(ctx, res, up.res.statusCode, { 'content-type': 'application/json' });
    this.end(ctx, res, buf);
  }

  /**
   * Chat SSE relayed event by event as it arrives. Usage is read from the final usage chunk; if the
   * client did not ask for it, that chunk is dropped. A mid-stream failure ends the stream with an
   * error chunk the client can read. A stream that ends with neither `[DONE]` nor a finish_reason was cut
   * short (`stream_error`); one that finished without a usage block is metered on an estimate.
   */
  async relayChatStream(ctx: CallContext, res: Response, up: UpstreamResponse, clientWantsUsage: boolean): Promise<void> {
    ctx.streamed = true;
    ctx.status = up.res.statusCode;
    this.writeHead(ctx, res, up.res.statusCode, SSE_HEADERS);
    res.flushHeaders();
    const adapter = up.target.provider.adapter;
    let contentEvents = 0;
    let sawDone = false;
    let sawFinish = false;
    const handle = (events: string[]): string => {
      let out = '';
      for (const ev of events) {
        const data = sseData(ev);
        if (data !== undefined && data.trim() === '[DONE]') {
          sawDone = true;
        } else {
          if (CONTENT_EVENT.test(ev)) contentEvents++;
          if (FINISH_EVENT.test(ev)) sawFinish = true;
          if (data !== undefined && USAGE_EVENT.test(ev)) {
            let j: unknown;
            try {
              j = JSON.parse(data);
            } catch {
              /* not JSON: relay as is */
            }
            if (isObject(j)) {
              if (isObject(j.usage)) {
                ctx.usage = adapter.usage('chat', j.usage);
                ctx.usageReported = true;
                ctx.noteServiceTier(j.service_tier);
              }
              if (!clientWantsUsage && Array.isArray(j.choices) && j.choices.length === 0) continue;
            }
          }
        }
        out += ev + '\n\n';
      }
      return out;
    };
    try {
      await this.pumpSse(ctx, res, up, handle);
      if (!sawDone && !sawFinish && !ctx.usageReported) throw new Error('upstream stream ended early');
      this.estimateIfUnreported(ctx, contentEvents);
      this.end(ctx, res);
    } catch (e) {
      const err = this.streamError(ctx, up, e, contentEvents);
      if (!res.writableEnded && !res.destroyed) {
        res.write(`data: ${JSON.stringify(err.body)}\n\n`);
        this.end(ctx, res);
      }
    }
  }

  /**
   * A stream that broke after its head (never retried): records why on ctx and estimates the usage of what
   * was streamed; throws ClientGone if the client left. Our idle or total timeout is a 504, shutdown a 503,
   * an upstream that went away a 502 `stream_error`. Each relay writes the returned error in its own wire
   * format: chat an error chunk (`data: {"error":…}`), the Responses API a `response.failed` event.
   */
  streamError(ctx: CallContext, up: UpstreamResponse, e: unknown, deltas: number): OpenAIError {
    if (!ctx.usageReported) this.estimateCutShort(ctx, deltas);
    if (ctx.clientGone) throw new ClientGone();
    const reason: unknown = ctx.abort.signal.aborted ? ctx.abort.signal.reason : e;
    const p = up.target.provider;
    let err: OpenAIError;
    if (reason instanceof OpenAIError) err = reason;
    else if ((reason as { code?: string } | undefined)?.code === 'UND_ERR_BODY_TIMEOUT') err = upstreamNetworkError(p, reason as Error & { code?: string });
    else err = Errors.upstream(502, p.name, `stream failed: ${(reason as Error)?.message ?? reason}`, 'stream_error', 'server_error');
    ctx.status = err.getStatus();
    ctx.errorCode = err.body.error.code;
    return err;
  }

  /**
   * A stream that finished without a usage block (a provider that ignores `include_usage`) is not free:
   * it is metered like one cut short, on the prompt estimate plus one token per streamed delta.
   */
  estimateIfUnreported(ctx: CallContext, deltas: number): void {
    if (ctx.usageReported) return;
    this.estimateCutShort(ctx, deltas);
    this.logger.debug(`request ${ctx.requestId}: ${ctx.target?.provider.name ?? 'upstream'} streamed no usage; metered on an estimate`);
  }

  /** A stream cut short has no usage block: count what was streamed (about one token per delta). */
  estimateCutShort(ctx: CallContext, deltas: number): void {
    ctx.usage = {
      inputTokens: ctx.usage.inputTokens || ctx.promptEstimate,
      outputTokens: Math.max(ctx.usage.outputTokens, deltas),
      cachedTokens: ctx.usage.cachedTokens,
      reasoningTokens: 0,
    };
  }
}

/** A non-stream upstream answer must be a JSON object: anything else is the provider's fault (502). */
export function parseUpstreamObject(up: UpstreamResponse, text: string): Body {
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
