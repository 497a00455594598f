import type { Logger } from '@nestjs/common';
import { MAX_JSON_DEPTH, jsonNestingExceeds, newRequestId } from '@gw/common';
import { requestLogFieldsOf } from '@gw/observability';
import type { Principal } from '@gw/tenancy';
import type { IncomingHttpHeaders } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { DataPlanePipeline } from '../pipeline/pipeline';
import type { ResponsesHandler } from './responses.handler';
import { SocketHistory } from './responses-socket.history';
import { SocketSink } from './responses-socket.sink';

/** What a connection needs of the gateway, per message. */
export interface SocketDeps {
  readonly pipeline: DataPlanePipeline;
  readonly handler: ResponsesHandler;
  /** The caller now (a key revoked since the upgrade stops working within the key cache's refresh), or why not. */
  reauthenticate(): { ok: true; principal: Principal } | { ok: false; status: number; error: unknown };
  readonly draining: () => boolean;
  readonly historyMaxBytes: number;
  readonly logger: Logger;
}

/** Fields only the WebSocket envelope has: never sent upstream. */
const WS_ONLY = new Set(['type', 'generate', 'client_metadata', 'previous_response_id']);

/** An `error` event as Codex reads it on the socket (`status` makes it an HTTP-like error; `code` picks its handling). */
export function errorEvent(status: number, code: string, message: string, param: string | null = null, type = 'invalid_request_error'): string {
  return JSON.stringify({ type: 'error', status, error: { type, code, message, param } });
}

/**
 * One Responses WebSocket (Codex's built-in provider): each `response.create` is one call through the data-plane
 * pipeline (one admission, one ledger row, routing, translation), answered as events on the socket, one at a
 * time. The connection keeps the history Codex continues with `previous_response_id` (responses-socket.history.ts).
 */
export class ResponsesSocketConnection {
  private readonly history: SocketHistory;
  private busy = false;
  private lastActivity = Date.now();

  constructor(
    private readonly ws: WebSocket,
    /** The upgrade request's headers: the session and Codex's headers each call forwards (client-headers.ts). */
    private headers: IncomingHttpHeaders,
    private readonly deps: SocketDeps,
  ) {
    this.history = new SocketHistory(deps.historyMaxBytes);
    this.headers = callHeaders(headers);
    ws.on('message', (data, isBinary) => {
      this.lastActivity = Date.now();
      this.onMessage(data, isBinary).catch((e: unknown) => {
        // A bug must not take the process down, nor leave the client waiting: it gets an error and the socket closes.
        deps.logger.error(`responses websocket: ${(e as Error)?.stack ?? String(e)}`);
        this.send(errorEvent(500, 'internal_error', 'The gateway failed to handle this message.', null, 'server_error'));
        ws.close(1011, 'internal error');
      });
    });
  }

  /** Idle since (ms epoch); never while a response is in flight. */
  idleSince(): number {
    return this.busy ? Date.now() : this.lastActivity;
  }

  /** Bytes of history held (for the gauge and tests). */
  get historyBytes(): number {
    return this.history.bytes;
  }

  private async onMessage(data: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) return this.send(errorEvent(400, 'invalid_message', 'Send `response.create` events as JSON text messages.'));
    const buf = rawBuffer(data);
    // As on HTTP (json-depth.ts): what walks the parsed message recurses, so a deep one is refused before parsing.
    if (jsonNestingExceeds(buf)) return this.send(errorEvent(400, 'invalid_json', `The message nests deeper than ${MAX_JSON_DEPTH} levels.`));
    const text = buf.toString('utf8');
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.send(errorEvent(400, 'invalid_json', 'The message is not valid JSON.'));
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return this.send(errorEvent(400, 'invalid_message', 'A message must be a JSON object.'));
    const m = msg as Record<string, unknown>;
    if (m.type !== 'response.create') {
      const t = typeof m.type === 'string' ? JSON.stringify(m.type.slice(0, 64)) : 'none';
      return this.send(errorEvent(400, 'unknown_event_type', `Unsupported event type ${t}: this endpoint accepts \`response.create\`.`, 'type'));
    }
    if (this.deps.draining()) {
      // Going away: Codex reconnects (to another replica) and resends its history in full.
      this.ws.close(1001, 'going away');
      return;
    }
    if (this.busy) return this.send(errorEvent(400, 'response_in_progress', 'A response is already in progress on this connection; wait for it to finish.'));
    const auth = this.deps.reauthenticate();
    if (!auth.ok) {
      this.send(JSON.stringify({ type: 'error', status: auth.status, error: auth.error }));
      this.ws.close(1008, 'unauthorized');
      return;
    }
    await this.create(auth.principal, m, Buffer.byteLength(text));
  }

  private async create(principal: Principal, m: Record<string, unknown>, messageBytes: number): Promise<void> {
    const input = this.fullInput(m);
    if (input === undefined) {
      this.history.clear();
      const id = typeof m.previous_response_id === 'string' ? m.previous_response_id.slice(0, 64) : '';
      // What makes Codex retry the turn with its full history on a new connection (codex-api responses_websocket.rs).
      return this.send(errorEvent(400, 'previous_response_not_found', `Previous response with id '${id}' not found.`, 'previous_response_id'));
    }
    // The whole input's size (as received): what the history will hold, and the prompt estimate the admission reserves.
    const continues = typeof m.previous_response_id === 'string' && m.previous_response_id !== '';
    const bytes = messageBytes + (continues ? this.history.bytes : 0);
    if (m.generate === false) return this.warmup(m, input, bytes);
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(m)) if (!WS_ONLY.has(k)) body[k] = v;
    body.stream = true;
    if (input !== null) body.input = input;
    const requestId = newRequestId();
    const sink = new SocketSink(this.ws, requestId);
    this.busy = true;
    try {
      await this.deps.pipeline.call(
        this.deps.handler,
        principal,
        { requestId, clientRequestId: null, headers: turnHeaders(this.headers, m.client_metadata), body, bodyBytes: bytes, gone: () => sink.destroyed },
        sink,
      );
    } finally {
      this.busy = false;
      this.lastActivity = Date.now();
    }
    if (sink.responseId && Array.isArray(input)) this.history.commit(sink.responseId, input, sink.items, bytes + sink.itemBytes);
    else this.history.clear();
    this.deps.logger.log({ msg: 'request completed', transport: 'websocket', requestId, ...requestLogFieldsOf(sink) });
  }

  /**
   * The request's whole input: the history plus what it adds when it continues a response of this connection;
   * undefined when it continues one this connection does not know; null when it has no input array to expand
   * (left to the handler's validation).
   */
  private fullInput(m: Record<string, unknown>): unknown[] | null | undefined {
    const prev = m.previous_response_id;
    const input = m.input === undefined ? [] : m.input;
    if (typeof prev !== 'string' || prev === '') return Array.isArray(input) ? input : null;
    if (!Array.isArray(input)) return undefined;
    return this.history.expand(prev, input);
  }

  /**
   * `generate: false` (Codex's prewarm): nothing to generate, so nothing is sent upstream or metered; the input
   * becomes the history the first turn continues.
   */
  private warmup(m: Record<string, unknown>, input: unknown[] | null, bytes: number): void {
    const id = `resp_${newRequestId().slice(4)}`;
    const response = { id, object: 'response', created_at: Math.floor(Date.now() / 1000), status: 'in_progress', model: m.model ?? null, output: [] };
    this.send(JSON.stringify({ type: 'response.created', sequence_number: 0, response }));
    this.send(JSON.stringify({ type: 'response.completed', sequence_number: 1, response: { ...response, status: 'completed', usage: null } }));
    if (input) this.history.commit(id, input, [], bytes);
  }

  private send(data: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(data);
  }
}

/** The upgrade's headers as every call's: the WebSocket beta is this hop's (a provider is called over HTTP). */
function callHeaders(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const beta = h['openai-beta'];
  if (typeof beta !== 'string' || !beta.includes('responses_websockets')) return h;
  const rest = beta
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t && !t.startsWith('responses_websockets'))
    .join(', ');
  const out = { ...h };
  if (rest) out['openai-beta'] = rest;
  else delete out['openai-beta'];
  return out;
}

const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Codex sends each turn's metadata in `client_metadata` over the socket (a header over HTTP): forwarded as the header. */
function turnHeaders(h: IncomingHttpHeaders, meta: unknown): IncomingHttpHeaders {
  if (!meta || typeof meta !== 'object') return h;
  const m = meta as Record<string, unknown>;
  let out: IncomingHttpHeaders | undefined;
  for (const name of ['x-codex-turn-metadata', 'x-codex-turn-state']) {
    const v = m[name];
    // Only what could have been an HTTP header value: a control character would make the upstream request fail.
    if (typeof v === 'string' && v.length <= 8192 && HEADER_VALUE.test(v)) (out ??= { ...h })[name] = v;
  }
  return out ?? h;
}

function rawBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
