import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { GatewayAuthGate } from '@gw/auth';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { GatewayMetrics } from '@gw/observability';
import { Errors, OpenAIError, TrustedProxies, stampClientAddress, toOpenAIError } from '@gw/common';
import type { Principal } from '@gw/tenancy';
import { IncomingMessage, STATUS_CODES, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { DrainService, shuttingDown } from '../health/drain.service';
import { AuthenticateStep } from '../pipeline/authenticate.step';
import { DataPlanePipeline } from '../pipeline/pipeline';
import { ResponsesSocketConnection, SocketDeps } from './responses-socket.connection';
import { StallWatch, pendingBytes } from './responses-socket.stall';
import { ResponsesHandler } from './responses.handler';

const PATH = '/v1/responses';
/** How often an open socket is pinged; one that did not answer the previous ping is dropped. */
const HEARTBEAT_MS = 30_000;

/** What the upgrade path has done (tests and docs/codex.md read it; each also a log line at debug). */
export interface SocketStats {
  upgrades: number;
  refused: number;
  open: number;
  closed: number;
}

/**
 * The Responses API over WebSocket on the gateway's HTTP server (`GET /v1/responses` with `Upgrade: websocket`,
 * what Codex's built-in OpenAI provider tries first). The upgrade is authenticated before anything else, by the
 * same step as an HTTP request (blocked address, failed-auth budget, KeyCache); a refusal is an HTTP answer
 * on the upgrade socket (401/403/429/503 with an OpenAI-shaped body), never an accepted socket. Over the
 * connection caps the answer is 426, which makes Codex use HTTP for the session. See docs/codex.md.
 */
@Injectable()
export class ResponsesSocketServer implements BeforeApplicationShutdown {
  private readonly logger = new Logger('ResponsesSocket');
  private readonly wss: WebSocketServer;
  private readonly trusted: TrustedProxies;
  private readonly perKey = new Map<string, number>();
  private readonly sockets = new Map<WebSocket, { conn: ResponsesSocketConnection; alive: boolean; stall: StallWatch }>();
  private heartbeat?: NodeJS.Timeout;
  readonly stats: SocketStats = { upgrades: 0, refused: 0, open: 0, closed: 0 };

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly authenticate: AuthenticateStep,
    private readonly gate: GatewayAuthGate,
    private readonly drain: DrainService,
    private readonly pipeline: DataPlanePipeline,
    private readonly handler: ResponsesHandler,
    private readonly metrics: GatewayMetrics,
  ) {
    // A message over the HTTP body limit closes the socket (1009) before it is buffered whole.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: sizeBytes(cfg.bodyLimit), perMessageDeflate: false });
    this.trusted = new TrustedProxies(cfg.trustedProxies);
  }

  /** Serves upgrades on `server` (every other upgrade path is answered 404). */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.upgrade(req, socket, head).catch((e: unknown) => refuse(socket, toOpenAIError(e)));
    });
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    // Node hands every `Connection: upgrade` request here once there is a listener; the body of one asking for
    // another protocol (`h2c`: `curl --http2` on http://) cannot be read any more: told to retry without it.
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return refuse(
        socket,
        Errors.badRequest(
          'Protocol upgrades other than WebSocket are not supported; send the request over plain HTTP/1.1 (no `Upgrade` header).',
          null,
          'unsupported_upgrade',
        ),
      );
    }
    if (path !== PATH) return refuse(socket, Errors.notFound(`No WebSocket endpoint at ${path.slice(0, 100)}; use ${PATH}.`));
    this.stats.upgrades++;
    // ws would answer a malformed handshake itself (text/html, after authentication spent a failed-auth try).
    const malformed = handshakeError(req);
    if (malformed) return this.refused(socket, malformed);
    if (this.drain.draining) return this.refused(socket, shuttingDown());
    stampClientAddress(req, this.trusted);
    let principal: Principal;
    try {
      principal = await this.authenticate.principal(req, 'responses');
    } catch (e) {
      return this.refused(socket, toOpenAIError(e));
    }
    const keyOpen = this.perKey.get(principal.keyId) ?? 0;
    if (this.stats.open >= this.cfg.wsMaxConnections || keyOpen >= this.cfg.wsMaxConnectionsPerKey) {
      // 426: Codex falls back to HTTP for the session, which is served with the same limits.
      const err = new OpenAIError(426, 'Too many open WebSockets for this key or gateway; use HTTP.', 'invalid_request_error', 'websocket_connection_limit');
      return this.refused(socket, err);
    }
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, req, principal, socket as Socket));
  }

  private open(ws: WebSocket, req: IncomingMessage, principal: Principal, socket: Socket): void {
    this.stats.open++;
    this.metrics.websocketUpgrade('accepted');
    this.metrics.websocketOpen(1);
    this.perKey.set(principal.keyId, (this.perKey.get(principal.keyId) ?? 0) + 1);
    const conn = new ResponsesSocketConnection(ws, req.headers, this.depsFor(req));
    const entry = { conn, alive: true, stall: new StallWatch(ws, socket, this.cfg.bodyMinBytesPerSecond, this.cfg.bodyRateWindowMs) };
    this.sockets.set(ws, entry);
    ws.on('pong', () => (entry.alive = true));
    ws.on('error', (e) => this.logger.debug(`responses websocket error: ${e.message}`));
    ws.once('close', () => {
      this.sockets.delete(ws);
      this.stats.open--;
      this.metrics.websocketOpen(-1);
      this.stats.closed++;
      const n = (this.perKey.get(principal.keyId) ?? 1) - 1;
      if (n > 0) this.perKey.set(principal.keyId, n);
      else this.perKey.delete(principal.keyId);
    });
  }

  private depsFor(req: IncomingMessage): SocketDeps {
    return {
      pipeline: this.pipeline,
      handler: this.handler,
      draining: () => this.drain.draining,
      historyMaxBytes: this.cfg.wsHistoryMaxBytes,
      logger: this.logger,
      reauthenticate: () => {
        const d = this.gate.decide(req);
        return d.ok ? { ok: true, principal: d.principal } : { ok: false, status: d.error.getStatus(), error: d.error.body.error };
      },
    };
  }

  /** Pings every socket; drops one that missed the last ping or whose message stalls, closes one idle past WS_IDLE_TIMEOUT_MS. */
  private beat(): void {
    this.closeStalled(Date.now());
    const idleBefore = Date.now() - this.cfg.wsIdleTimeoutMs;
    for (const [ws, entry] of this.sockets) {
      if (!entry.alive) {
        ws.terminate();
        continue;
      }
      if (entry.conn.idleSince() < idleBefore) {
        ws.close(1000, 'idle');
        continue;
      }
      entry.alive = false;
      ws.ping();
    }
  }

  /** Drops the sockets whose message arrives slower than the body rate (StallWatch); `now` given by tests. */
  closeStalled(now: number): void {
    for (const [ws, entry] of this.sockets) if (entry.stall.stalled(now)) ws.terminate();
  }

  private refused(socket: Duplex, err: OpenAIError): void {
    this.stats.refused++;
    this.metrics.websocketUpgrade(err.getStatus());
    refuse(socket, err);
  }

  /** After the drain (in-flight calls finished or aborted): the open sockets are told the gateway is going away. */
  beforeApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    this.closeAll();
  }

  /** Closes every open socket (1001 going away): Codex reconnects and resends its history in full. */
  closeAll(): void {
    const closing = [...this.sockets.keys()];
    for (const ws of closing) ws.close(1001, 'going away');
    // Sockets that do not finish the close handshake promptly must not hold the server's close.
    setTimeout(() => {
      for (const ws of closing) if (ws.readyState !== ws.CLOSED) ws.terminate();
    }, 1_000).unref();
  }

  /** Bytes of messages begun but not complete, over the open sockets (tests). */
  pendingMessageBytes(): number {
    let n = 0;
    for (const ws of this.sockets.keys()) n += pendingBytes(ws);
    return n;
  }

  /** Open sockets' history bytes (tests; a sum, for the gauge one may add). */
  historyBytes(): number {
    let n = 0;
    for (const { conn } of this.sockets.values()) n += conn.historyBytes;
    return n;
  }
}

/** What ws's handleUpgrade would refuse (RFC 6455 4.2.1), as an OpenAI-shaped error; undefined when it would accept. */
function handshakeError(req: IncomingMessage): OpenAIError | undefined {
  if (req.method !== 'GET') {
    const message = `A WebSocket upgrade is a GET request, not ${String(req.method).slice(0, 16)}.`;
    return new OpenAIError(405, message, 'invalid_request_error', 'method_not_allowed', null, { allow: 'GET' });
  }
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim())) {
    return Errors.badRequest('Missing or invalid Sec-WebSocket-Key header (16 random bytes, base64).', null, 'invalid_websocket_handshake');
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    const message = 'Missing or unsupported Sec-WebSocket-Version header; use 13.';
    return new OpenAIError(400, message, 'invalid_request_error', 'invalid_websocket_handshake', null, { 'sec-websocket-version': '13, 8' });
  }
  return undefined;
}

/** An HTTP answer on the upgrade socket, then closed: the upgrade is refused, never accepted. */
function refuse(socket: Duplex, err: OpenAIError): void {
  if (socket.destroyed) return;
  const status = err.getStatus();
  const body = JSON.stringify(err.body);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ];
  for (const [k, v] of Object.entries(err.headers)) head.push(`${k}: ${v}`);
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** `50mb`-style sizes (as BODY_LIMIT is validated) in bytes. */
export function sizeBytes(size: string): number {
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(size);
  if (!m) return 50 * 1024 * 1024;
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * unit;
}
