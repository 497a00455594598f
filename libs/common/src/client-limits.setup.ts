import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { BodyRateGuard } from './body-rate.guard';
import { TrustedProxies } from './client-address';
import { ConnectionCap } from './connection-cap.guard';

/** What bounds slow and greedy clients at the HTTP edge (AppConfig has these fields: pass it as is). */
export interface ClientLimits {
  /** Request line and headers must arrive within this (408). */
  headersTimeoutMs: number;
  /** Request line and headers larger than this: 431. */
  maxHeaderBytes: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** Bodies must arrive at this average rate over each window (408); 0 = off. */
  bodyMinBytesPerSecond: number;
  bodyRateWindowMs: number;
  /** Open connections per client address (TCP peer); 0 = no cap. */
  maxConnectionsPerAddress: number;
}

export interface ClientLimitGuards {
  bodyRate: BodyRateGuard;
  connections: ConnectionCap;
}

/**
 * Applies the limits to an HTTP server before it listens (Nest creates it in `NestFactory.create`;
 * `connectionsCheckingInterval` is read at 'listening', `maxHeaderSize` at each connection).
 *
 * Node's own `requestTimeout` (5 min by default) bounds the whole request, body included: it would cut a
 * legitimate 50 MB upload on a slow link, so it is off, and bodies are bounded by their rate instead. The
 * header timeout is enforced by Node's connection sweep, which runs every 30 s by default: here every
 * tenth of the timeout (100 ms to 1 s), one pass over the open connections.
 */
export function applyClientLimits(server: Server, limits: ClientLimits, trusted = new TrustedProxies()): ClientLimitGuards {
  // Both are createServer() options that Node's typings do not list as properties; Node reads them as such.
  const s = server as Server & { connectionsCheckingInterval: number; maxHeaderSize?: number };
  s.requestTimeout = 0;
  s.headersTimeout = limits.headersTimeoutMs;
  s.connectionsCheckingInterval = Math.min(1_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 10)));
  s.keepAliveTimeout = limits.keepAliveTimeoutMs;
  s.maxHeaderSize = limits.maxHeaderBytes;
  server.on('clientError', answerClientError);
  // Node answers an `Expect` other than 100-continue with a bare 417 by itself; this one is OpenAI-shaped.
  server.on('checkExpectation', answerExpectation);

  const bodyRate = new BodyRateGuard({ minBytesPerSecond: limits.bodyMinBytesPerSecond, windowMs: limits.bodyRateWindowMs });
  // First of the 'request' listeners: watching starts before Express (and its body parser) sees the request.
  server.prependListener('request', bodyRate.watch);
  server.on('close', () => bodyRate.stop());

  const connections = new ConnectionCap(limits.maxConnectionsPerAddress, (peer) => trusted.has(peer));
  connections.install(server);
  return { bodyRate, connections };
}

const ANSWERED = Symbol('gw.clientErrorAnswered');
const noop = (): void => undefined;

function rawError(status: number, reason: string, type: string, code: string, message: string): Buffer {
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const HEADERS_TIMEOUT = rawError(
  408,
  'Request Timeout',
  'invalid_request_error',
  'request_timeout',
  'The request line and headers did not arrive in time; the connection is closed.',
);
const HEADERS_TOO_LARGE = rawError(
  431,
  'Request Header Fields Too Large',
  'invalid_request_error',
  'headers_too_large',
  'The request line and headers are larger than the gateway accepts.',
);
const CHUNK_EXTENSIONS_TOO_LARGE = rawError(
  413,
  'Payload Too Large',
  'invalid_request_error',
  'request_too_large',
  'Chunk extensions are larger than the gateway accepts.',
);
const MALFORMED = rawError(400, 'Bad Request', 'invalid_request_error', 'malformed_request', 'The request is not valid HTTP/1.1.');

const EXPECTATION_FAILED = JSON.stringify({
  error: { message: 'The only Expect the gateway meets is 100-continue.', type: 'invalid_request_error', param: null, code: 'expectation_failed' },
});

function answerExpectation(_req: IncomingMessage, res: ServerResponse): void {
  // The body is not read: the connection is closed after the answer.
  res.writeHead(417, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(EXPECTATION_FAILED), connection: 'close' });
  res.end(EXPECTATION_FAILED);
}

/**
 * The server's 'clientError' listener: what Node answers by itself (408 at the header timeout, 431, 400 for
 * unparseable HTTP), OpenAI-shaped. The parser may report one socket more than once; it is answered once.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const s = socket as Socket & { [ANSWERED]?: boolean; _httpMessage?: { headersSent?: boolean } };
  if (s[ANSWERED]) return;
  s[ANSWERED] = true;
  socket.on('error', noop);
  // A reset socket cannot be answered; neither can one whose response has started.
  if (err.code === 'ECONNRESET' || !socket.writable || s._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const answer =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? HEADERS_TIMEOUT
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? HEADERS_TOO_LARGE
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? CHUNK_EXTENSIONS_TOO_LARGE
          : MALFORMED;
  socket.end(answer);
  // Whatever the client still sends is not parsed any more; it gets a moment to read the answer.
  setTimeout(() => socket.destroy(), 1_000).unref();
}
