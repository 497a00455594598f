import { INestApplication, Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TrustedProxies, stampClientAddress } from './client-address';
import { ClientLimitGuards, ClientLimits, applyClientLimits } from './client-limits.setup';
import { OpenAIExceptionFilter, toOpenAIError } from './openai-exception.filter';
import { assignRequestId } from './request-id';
import { recordBodyBytes, unsupportedContentEncoding, unsupportedEncodingError } from './request-body';
import { MAX_JSON_DEPTH, jsonNestingExceeds } from './json-depth';
import { Errors, OpenAIError } from './openai-error';

export type HttpMiddleware = (req: Request, res: Response, next: NextFunction) => void;

const SKIP_BODY = Symbol('gw.skipBody');
const TOO_DEEP = Symbol('gw.tooDeep');

/**
 * Marks a request whose body is not worth reading: it will be refused (no usable credential) by a guard
 * that runs after the parser, with the usual error, log line and metrics. The body is left unread, and
 * the connection closed after the answer rather than drained.
 */
export function skipBodyParsing(req: IncomingMessage, res: ServerResponse): void {
  (req as unknown as Record<symbol, boolean>)[SKIP_BODY] = true;
  const len = req.headers['content-length'];
  if ((len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined) res.setHeader('connection', 'close');
}

/**
 * What both apps share at the HTTP edge: a request id on every response, JSON bodies up to the
 * configured limit whatever the content-type (curl -d sends form-encoded by default), and the
 * OpenAI-shaped error filter, and the client address (`clientAddressOf`) stamped on every request. `beforeBody` middleware runs after the request id is assigned and before
 * the body is read, and may `skipBodyParsing`: the gateway does so for requests without a usable
 * credential (`GatewayAuthGate`), so an anonymous client cannot make it read and parse a 50 MB body.
 * `clientLimits` bound slow and greedy clients on the app's HTTP server (header time and size, body rate,
 * connections per address: `applyClientLimits`).
 */
export function configureHttpApp(
  app: NestExpressApplication,
  bodyLimit: string,
  opts: { beforeBody?: HttpMiddleware[]; trustedProxies?: readonly string[]; clientLimits: ClientLimits },
): ClientLimitGuards {
  app.disable('x-powered-by');
  app.set('etag', false);
  const trusted = new TrustedProxies(opts.trustedProxies ?? []);
  const guards = applyClientLimits(app.getHttpServer(), opts.clientLimits, trusted);
  app.use((req: Request, res: Response, next: () => void) => {
    assignRequestId(req, res);
    // The one client address (TRUSTED_PROXIES decides whether X-Forwarded-For counts): limiter, allowedIps, logs.
    stampClientAddress(req, trusted);
    next();
  });
  for (const mw of opts.beforeBody ?? []) app.use(mw);
  const read = jsonBodyReader(bodyLimit);
  app.use((req: Request, res: Response, next: NextFunction) => {
    read(req, res).then(() => next(), next);
  });
  app.useGlobalFilters(new OpenAIExceptionFilter());
  return guards;
}

/**
 * Reads a request's JSON body onto `req.body`, whatever the content-type (curl -d sends form-encoded by
 * default), up to `bodyLimit` inflated; rejects with the OpenAI-shaped error to answer. Both edges use it:
 * Express's middleware for the control routes and the gateway's data-plane edge. A request marked by
 * `skipBodyParsing` is left unread. An unsupported Content-Encoding is refused before reading (and the
 * connection closed rather than drained).
 */
export function jsonBodyReader(bodyLimit: string): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // body-parser's JSON parser: its errors become OpenAI errors here. The limit bounds the inflated body
  // (raw-body counts what the decompressor yields and stops it there), and `verify` records that inflated
  // size for the budget estimate and measures the nesting on the raw bytes (parsed values are walked
  // recursively downstream).
  const parse = json({
    limit: bodyLimit,
    type: () => true,
    verify: (req, res, buf, charset) => {
      recordBodyBytes(req, res, buf, charset);
      if (jsonNestingExceeds(buf)) (req as unknown as Record<symbol, boolean>)[TOO_DEEP] = true;
    },
  }) as unknown as (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  return (req, res) =>
    new Promise<void>((resolve, reject) => {
      if ((req as unknown as Record<symbol, boolean>)[SKIP_BODY]) return resolve();
      const enc = unsupportedContentEncoding(req);
      if (enc !== undefined) {
        // Refused before reading: the body cannot be understood; close rather than drain it.
        res.setHeader('connection', 'close');
        return reject(unsupportedEncodingError(enc));
      }
      parse(req, res, (err?: unknown) => {
        if (err) return reject(bodyError(req, err));
        if ((req as unknown as Record<symbol, boolean>)[TOO_DEEP]) {
          (req as IncomingMessage & { body?: unknown }).body = undefined;
          return reject(Errors.badRequest(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`, null, 'invalid_json'));
        }
        resolve();
      });
    });
}

/**
 * body-parser's error as the client's answer. A body that is not what its Content-Encoding says fails in zlib,
 * which body-parser passes on as a bare 400 without a `type` (its own errors all have one).
 */
function bodyError(req: IncomingMessage, err: unknown): OpenAIError {
  const e = err as { type?: unknown; status?: unknown };
  if (
    e &&
    e.type === undefined &&
    e.status === 400 &&
    unsupportedContentEncoding(req) === undefined &&
    (req.headers['content-encoding'] ?? 'identity') !== 'identity'
  ) {
    return Errors.badRequest('The request body could not be decompressed: it is not what its Content-Encoding header says.', null, 'invalid_body_encoding');
  }
  return toOpenAIError(err);
}

export interface GracefulShutdownOptions {
  /** The apps' SHUTDOWN_GRACE_MS: how long in-flight requests may take before the drain aborts them. */
  graceMs?: number;
  /** Time on top of the grace period for aborting what is left, flushing the ledger and closing pools. */
  settleMs?: number;
}

/** Copies of one signal that arrive this close together are one event delivered by several paths. */
const DUPLICATE_SIGNAL_MS = 1_000;

/**
 * SIGTERM/SIGINT: close every app (each stops accepting, drains, flushes its ledger), then run the
 * extra cleanup (e.g. stopping the embedded database), then exit.
 *
 * One shutdown, whatever arrives meanwhile: a second signal during the drain is expected (Ctrl-C reaches
 * every process of the terminal's group, a supervisor may forward it again, an impatient operator presses
 * it twice) and is logged once and ignored, because exiting there would lose the requests still being
 * drained and the ledger rows not yet flushed. The process is forced out (exit 1) only by a third signal
 * (copies within 1 s of the last one count once: systemd signals the whole group, npm and start.mjs forward),
 * or by any signal once the grace period plus `settleMs` has passed (the drain is then stuck).
 */
export function installGracefulShutdown(
  apps: INestApplication[],
  cleanup: () => Promise<void> = async () => undefined,
  opts: GracefulShutdownOptions = {},
): void {
  const logger = new Logger('Shutdown');
  const graceMs = opts.graceMs ?? 30_000;
  const settleMs = opts.settleMs ?? 15_000;
  let startedAt = 0;
  let lastSignalAt = 0;
  let signals = 0;
  let warned = false;
  const stop = async (signal: string) => {
    const now = Date.now();
    if (startedAt) {
      const elapsed = now - startedAt;
      const duplicate = now - lastSignalAt < DUPLICATE_SIGNAL_MS;
      if (duplicate && elapsed <= graceMs + settleMs) return; // the same event by another path
      signals++;
      lastSignalAt = now;
      if (signals >= 3 || elapsed > graceMs + settleMs) {
        logger.error(
          `${signal} again after ${elapsed} ms of draining: exiting now; requests still in flight and unflushed ledger rows are left to the usage journal (replayed at the next start)`,
        );
        process.exit(1);
      }
      if (!warned) {
        warned = true;
        logger.warn(`${signal} again: already draining (up to ${graceMs} ms), ignored; a third signal forces the exit`);
      }
      return;
    }
    startedAt = lastSignalAt = now;
    signals = 1;
    logger.log(`${signal}: draining`);
    try {
      for (const app of apps) await app.close();
      await cleanup();
      process.exit(0);
    } catch (e) {
      logger.error(`shutdown failed: ${(e as Error).message}`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
