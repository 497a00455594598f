import { EventEmitter } from 'node:events';
import { SseReader, sseData } from '@gw/providers';
import type { WebSocket } from 'ws';
import type { ClientSink } from '../pipeline/client-sink';

/** Above this many bytes queued on the socket, the relay waits (back-pressure, as for an HTTP client). */
const HIGH_WATER = 1024 * 1024;
/** Response headers worth telling the client with an error event (Codex reads `headers` there): limits, ids. */
const ERROR_HEADERS = /^(retry-after|x-ratelimit-|x-codex-|x-should-retry|x-request-id|x-gateway-|x-upstream-request-id)/;

/**
 * One `response.create` of a Responses WebSocket as the pipeline's client: the SSE events the relay writes go
 * out one WebSocket text message each (the event's `data`, as OpenAI's WebSocket mode sends them), and an error
 * answered before any event (JSON with a status) becomes one `error` event in the shape Codex reads:
 * `{"type":"error","status":429,"error":{…},"headers":{…}}`. It notes what the connection's history needs:
 * the output items and the id of a response that completed.
 */
export class SocketSink extends EventEmitter implements ClientSink {
  headersSent = false;
  writableEnded = false;
  private status = 0;
  private headers: Record<string, string> = {};
  private readonly reader = new SseReader();
  private errorBody = '';
  /** Output items of the response (`response.output_item.done`), in order, and their JSON size. */
  readonly items: unknown[] = [];
  itemBytes = 0;
  /** Set once the response completed (`response.completed`): the id the next request continues. */
  responseId?: string;

  constructor(
    private readonly ws: WebSocket,
    private readonly requestId: string,
  ) {
    super();
    ws.once('close', () => {
      if (!this.writableEnded) this.emit('close');
    });
  }

  get writableFinished(): boolean {
    return this.writableEnded;
  }

  get destroyed(): boolean {
    return this.ws.readyState !== this.ws.OPEN;
  }

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }

  flushHeaders(): void {
    // Nothing to flush: a WebSocket has no response head.
  }

  write(chunk: string | Buffer): boolean {
    if (this.status >= 400 || !this.streaming) {
      this.errorBody += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      return true;
    }
    // The relay writes SSE as the upstream's bytes (byte path) or as strings: either is split into events here.
    for (const event of this.reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) this.sendEvent(event);
    return this.ws.bufferedAmount < HIGH_WATER;
  }

  end(body?: string | Buffer): this {
    if (this.writableEnded) return this;
    if (body !== undefined) this.write(body);
    if (this.streaming && this.status < 400) for (const event of this.reader.end()) this.sendEvent(event);
    else this.sendError();
    this.writableEnded = true;
    this.emit('finish');
    return this;
  }

  private get streaming(): boolean {
    return (this.headers['content-type'] ?? '').startsWith('text/event-stream');
  }

  private sendEvent(event: string): void {
    const data = sseData(event);
    if (data === undefined || data === '[DONE]') return;
    this.note(data);
    this.send(data);
  }

  /** Reads what the history needs, parsing only the two kinds of events that carry it. */
  private note(data: string): void {
    const done = data.includes('"response.output_item.done"');
    if (!done && !data.includes('"response.completed"')) return;
    let ev: { type?: unknown; item?: unknown; response?: { id?: unknown } };
    try {
      ev = JSON.parse(data) as typeof ev;
    } catch {
      return;
    }
    if (ev.type === 'response.output_item.done' && ev.item && typeof ev.item === 'object') {
      this.items.push(ev.item);
      this.itemBytes += data.length;
    } else if (ev.type === 'response.completed' && typeof ev.response?.id === 'string') {
      this.responseId = ev.response.id;
    }
  }

  /** The pipeline's JSON error (or a non-stream answer, which a WebSocket call never asks for) as an `error` event. */
  private sendError(): void {
    let error: unknown;
    try {
      error = (JSON.parse(this.errorBody) as { error?: unknown }).error;
    } catch {
      // not ours to parse: reported with the status alone
    }
    const headers: Record<string, string> = { 'x-request-id': this.requestId };
    for (const [k, v] of Object.entries(this.headers)) if (ERROR_HEADERS.test(k)) headers[k] = v;
    const status = this.status >= 400 ? this.status : 502;
    this.send(
      JSON.stringify({
        type: 'error',
        status,
        error: error ?? { type: 'server_error', code: null, message: 'The upstream answer could not be relayed.' },
        headers,
      }),
    );
  }

  private send(data: string): void {
    if (this.destroyed) return;
    this.ws.send(data, () => {
      if (this.ws.bufferedAmount < HIGH_WATER) this.emit('drain');
    });
  }
}
