import { bodyBytesOf, clientRequestIdOf, takeRawBody, requestIdOf } from '@gw/common';
import type { IncomingHttpHeaders } from 'node:http';
import type { DataPlaneRequest } from './http.types';

/**
 * Where the pipeline writes a call's answer: the HTTP response (Express's satisfies this as is), or one
 * `response.create` of a Responses WebSocket (`handlers/responses-socket.sink.ts`), which turns the same head,
 * SSE bytes and JSON error into WebSocket messages. Only what the relay and settle steps use.
 */
export interface ClientSink {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  flushHeaders(): void;
  /** false: wait for 'drain' (back-pressure). A Buffer: the upstream's bytes, forwarded undecoded (the SSE byte path). */
  write(chunk: string | Buffer): boolean;
  end(body?: string | Buffer): unknown;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
}

/** What the pipeline needs of the client's request once its caller is known. */
export interface ClientCall {
  readonly requestId: string;
  readonly clientRequestId: string | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  /** The body's size as received (after inflation); undefined: measured from `body`. */
  readonly bodyBytes: number | undefined;
  /** The body's bytes (valid UTF-8, inflated) when they may be forwarded as they are; see forwarded-bytes.ts. */
  readonly raw?: Buffer;
  /** The client hung up already (e.g. while it was being authenticated). */
  gone(): boolean;
}

/** An HTTP request as a call. */
export function httpCall(req: DataPlaneRequest): ClientCall {
  return {
    requestId: requestIdOf(req),
    clientRequestId: clientRequestIdOf(req),
    headers: req.headers,
    body: req.body,
    bodyBytes: bodyBytesOf(req),
    raw: takeRawBody(req),
    gone: () => Boolean(req.socket?.destroyed),
  };
}
