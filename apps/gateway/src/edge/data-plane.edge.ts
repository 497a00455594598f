import { Inject, Injectable, Logger } from '@nestjs/common';
import { GatewayAuthGate } from '@gw/auth';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { TrustedProxies, assignRequestId, jsonBodyReader, stampClientAddress, writeOpenAIError } from '@gw/common';
import { HttpMetrics, requestLineWriter } from '@gw/observability';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { ChatHandler } from '../handlers/chat.handler';
import { EmbeddingsHandler } from '../handlers/embeddings.handler';
import { ResponsesCompactHandler } from '../handlers/responses-compact.handler';
import { ResponsesHandler } from '../handlers/responses.handler';
import { DrainService } from '../health/drain.service';
import type { EndpointHandler } from '../pipeline/call-plan';
import { DataPlanePipeline } from '../pipeline/pipeline';

/**
 * The data plane's HTTP edge: `POST /v1/chat/completions`, `/v1/responses`, `/v1/responses/compact` and
 * `/v1/embeddings` are answered here, on node's own request and response, without Express routing, Nest's
 * guard/interceptor chain and pino-http (their cost per request was a large share of the gateway's CPU).
 * Everything else (`/v1/models`, probes, `/metrics`, `/admin/circuits`, and any other spelling of these
 * paths) goes on to Express and Nest as before. It does what the Express edge does for these routes, in the
 * same order: the drain's refusal, the request id, the client address, the pre-body authentication
 * (`Expect: 100-continue` after it), the JSON body (limit, encodings, depth), the HTTP edge metrics, one log
 * line when the response closes, and the exception filter's OpenAI-shaped answer for what the pipeline throws.
 * The socket-level limits (header time and size, body rate, connections per address) are the server's and
 * apply to both edges.
 */
@Injectable()
export class DataPlaneEdge {
  private readonly logger = new Logger('Errors');
  private readonly routes: ReadonlyMap<string, EndpointHandler>;
  private readonly trusted: TrustedProxies;
  private readonly readBody: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  private readonly logLine: (req: IncomingMessage, res: ServerResponse, t0: number) => void;

  constructor(
    @Inject(APP_CONFIG) cfg: AppConfig,
    private readonly drain: DrainService,
    private readonly gate: GatewayAuthGate,
    private readonly pipeline: DataPlanePipeline,
    private readonly metrics: HttpMetrics,
    chat: ChatHandler,
    responses: ResponsesHandler,
    compact: ResponsesCompactHandler,
    embeddings: EmbeddingsHandler,
  ) {
    this.routes = new Map<string, EndpointHandler>([
      ['/v1/chat/completions', chat],
      ['/v1/responses', responses],
      ['/v1/responses/compact', compact],
      ['/v1/embeddings', embeddings],
    ]);
    this.trusted = new TrustedProxies(cfg.trustedProxies);
    this.readBody = jsonBodyReader(cfg.bodyLimit);
    this.logLine = requestLineWriter('gateway', cfg.logLevel, cfg.logFormat);
  }

  /**
   * Puts the edge in front of `app` (the Express app Nest created the server with): the server's request
   * listener becomes this one, which hands on what it does not serve. Listeners added before (the body-rate
   * watch) still run first.
   */
  mount(server: Server, app: RequestListener): void {
    if (!server.listeners('request').includes(app)) throw new Error('the data-plane edge must be mounted on the server Nest created for its Express app');
    server.removeListener('request', app);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.take(req, res)) app(req, res);
    });
  }

  /** Whether the request is one of the data plane's (then it is answered here); exact paths, as clients send them. */
  take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const handler = this.routes.get(path);
    if (!handler) return false;
    this.serve(handler, path, req, res).catch((e: unknown) => this.logger.error(`request failed at the edge: ${(e as Error)?.stack ?? String(e)}`));
    return true;
  }

  private async serve(handler: EndpointHandler, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    // First: a draining gateway refuses new work before reading a (possibly 50 MB) body.
    if (!this.drain.admit(path, res)) return;
    assignRequestId(req, res);
    // The one client address (TRUSTED_PROXIES decides whether X-Forwarded-For counts): limiter, allowedIps, logs.
    stampClientAddress(req, this.trusted);
    res.once('close', () => {
      this.metrics.observe(req.method, path, res, t0);
      this.logLine(req, res, t0);
    });
    try {
      // Before the body: a request without a usable credential is marked, and its body never read.
      this.gate.gate(req, res);
      await this.readBody(req, res);
      await this.pipeline.run(handler, req, res);
    } catch (e) {
      writeOpenAIError(req, res, e, this.logger);
    }
  }
}
