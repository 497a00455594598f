import { DynamicModule, RequestMethod } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { assignRequestId, clientAddressOf, clientRequestIdOf, requestIdOf } from '@gw/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule, Params } from 'nestjs-pino';
import pino, { DestinationStream, Logger as PinoInstance, LevelWithSilent, LoggerOptions } from 'pino';
import type { Options as PinoHttpOptions } from 'pino-http';
import { ALL_ROUTES_PATH, ObservedApp } from './http.metrics';

/** Flat, JSON-safe fields: never a prompt, a completion, a header or a key secret. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const LOG_FIELDS = Symbol('gw.logFields');
const LOG_LINE = Symbol('gw.logLine');
/** Paths polled by Prometheus and health checks: logging them would drown the traffic. */
const QUIET_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

type Annotated = ServerResponse & { [LOG_FIELDS]?: () => LogFields; [LOG_LINE]?: LogFields };

/**
 * Adds fields to the one log line of this request. Lazy: the function runs only if the line is
 * written (at its level) once the response has ended, so the hot path pays one closure.
 */
export function annotateRequestLog(res: object, fields: () => LogFields): void {
  (res as Annotated)[LOG_FIELDS] = fields;
}

/** The fields annotated on `res`, for a call whose line is not written by pino-http (a WebSocket's `response.create`). */
export function requestLogFieldsOf(res: object): LogFields | undefined {
  return (res as Annotated)[LOG_FIELDS]?.();
}

const LEVELS: Record<LevelWithSilent, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

function pathOnly(url: string | undefined): string | undefined {
  const q = url?.indexOf('?') ?? -1;
  return q >= 0 ? url!.slice(0, q) : url;
}

/** The request line: who (tenant, key prefix), what (method, route, model, provider), how it went. */
function requestLine(app: ObservedApp, req: IncomingMessage, res: ServerResponse): LogFields {
  const r = res as Annotated;
  if (r[LOG_LINE]) return r[LOG_LINE];
  // Gateway principals carry tenantName/keyPrefix; admin principals role, tenantId and a token prefix.
  const user = (req as IncomingMessage & { user?: { tenantName?: string; keyPrefix?: string; role?: string; tenantId?: string | null; prefix?: string } }).user;
  const line: LogFields = {
    app,
    method: req.method,
    // The path only: a query string may carry anything a client put there (a misplaced `?access_token=`…).
    url: pathOnly((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url),
    status: res.statusCode,
    // The same address the failure limiter and allowedIps see (TRUSTED_PROXIES applied).
    clientIp: clientAddressOf(req),
  };
  // The client's own x-request-id (never our id, see request-id.ts): lets its traces find this line.
  const clientId = clientRequestIdOf(req);
  if (clientId) line.clientRequestId = clientId;
  if (user?.tenantName) line.tenant = user.tenantName;
  if (user?.keyPrefix) line.keyPrefix = user.keyPrefix;
  if (user?.role) {
    line.role = user.role;
    if (user.tenantId) line.tenantId = user.tenantId;
    if (user.prefix) line.tokenPrefix = user.prefix;
  }
  if (r[LOG_FIELDS]) Object.assign(line, r[LOG_FIELDS]());
  // The client left before the end: whatever the handler recorded, say so.
  if (!res.writableFinished) line.status = 499;
  r[LOG_LINE] = line;
  return line;
}

/** Nest's start-up chatter (one line per module, controller and route): debug, not info. */
const NEST_CHATTER = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory', 'NestApplication']);

/**
 * One root logger per level and format, shared by both apps under `npm start`: nestjs-pino keeps the first one
 * for lines outside a request, so the app is named on request lines rather than bound to the logger.
 */
const roots = new Map<string, PinoInstance>();
function rootLogger(level: LevelWithSilent, format: AppConfig['logFormat'] = 'json'): PinoInstance {
  const id = `${level}:${format}`;
  let root = roots.get(id);
  if (!root) {
    const opts: LoggerOptions = {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method, lvl) {
          const first = args[0] as { context?: unknown } | undefined;
          if (lvl === 30 && typeof first?.context === 'string' && NEST_CHATTER.has(first.context)) {
            if (this.isLevelEnabled('debug')) this.debug(...(args as [object, string]));
            return;
          }
          method.apply(this, args);
        },
      },
    };
    // process.stdout rather than pino's own fd writer: as synchronous for files and pipes, and whatever
    // wraps stdout (a test, a supervisor) sees every line. Pretty printing is loaded only when asked for, so
    // the JSON path costs nothing more.
    root = pino(opts, format === 'pretty' ? prettyStream() : process.stdout);
    roots.set(id, root);
  }
  return root;
}

/** pino-pretty in this thread (a transport would start a worker thread: more memory for a few lines a second). */
function prettyStream(): DestinationStream {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pretty.build({
    destination: process.stdout,
    sync: true,
    colorize: !!process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    // Fields are folded into the message: one readable line per event, not a block of key: value lines.
    hideObject: true,
    messageFormat: prettyLine as never,
  });
}

/** A scalar field as text; anything else (absent, an object) as nothing. */
function text(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** `[Context] message`, a request as `gateway POST /v1/chat/completions 200 12 ms team-a gpt-4o-mini → openai 9+12 tokens`, errors with their stack. */
export function prettyLine(log: Record<string, unknown>, messageKey: string): string {
  const err = log.err as { stack?: string; message?: string } | undefined;
  const tail = err ? `\n${err.stack ?? err.message ?? ''}` : '';
  if (typeof log.method === 'string' && log.status !== undefined) {
    const parts = [text(log.app), log.method, text(log.url), text(log.status), `${text(log.latencyMs) || '?'} ms`, text(log.tenant), text(log.model)];
    if (text(log.provider)) parts.push(`→ ${text(log.provider)}`);
    if (text(log.inputTokens) && text(log.outputTokens)) parts.push(`${text(log.inputTokens)}+${text(log.outputTokens)} tokens`);
    parts.push(text(log.errorCode));
    return parts.filter(Boolean).join(' ') + tail;
  }
  return `${text(log.context) ? `[${text(log.context)}] ` : ''}${text(log[messageKey])}${tail}`;
}

function message(status: unknown): string {
  if (status === 499) return 'request aborted';
  return typeof status === 'number' && status >= 500 ? 'request failed' : 'request completed';
}

export function pinoHttpOptions(app: ObservedApp, level: AppConfig['logLevel'], format: AppConfig['logFormat'] = 'json'): PinoHttpOptions {
  const threshold = LEVELS[level];
  /**
   * Request lines are an access log: `info`, or `warn` when the request ended 5xx (mostly upstream trouble;
   * the gateway's own faults are logged at `error` where they happen). So LOG_LEVEL=error shows faults only.
   */
  const levelFor = (req: IncomingMessage, res: ServerResponse, err?: Error): LevelWithSilent => {
    if (threshold > LEVELS.warn) return 'silent';
    // The handler's status wins over the head's: a stream that broke after its 200 head failed.
    const status = requestLine(app, req, res).status;
    const wanted: LevelWithSilent = err || (typeof status === 'number' && status >= 500) ? 'warn' : 'info';
    return LEVELS[wanted] < threshold ? 'silent' : wanted;
  };
  return {
    logger: rootLogger(level, format),
    // Reuse the id the HTTP edge assigned (and returned as x-request-id), so logs and clients agree.
    genReqId: (req, res) => {
      const id = requestIdOf(req);
      return id !== 'unknown' ? id : assignRequestId(req, res);
    },
    // Only the request id is bound per request (cheap child); the rest is assembled once, at the end.
    quietReqLogger: true,
    quietResLogger: true,
    customAttributeKeys: { reqId: 'requestId', responseTime: 'latencyMs' },
    autoLogging: { ignore: (req) => QUIET_PATHS.has((req.url ?? '').split('?')[0]) },
    customLogLevel: levelFor,
    customSuccessMessage: (req, res) => message(requestLine(app, req, res).status),
    customErrorMessage: (req, res) => message(requestLine(app, req, res).status),
    customSuccessObject: (req, res, val: { latencyMs?: number }) => ({ ...requestLine(app, req, res), latencyMs: val.latencyMs }),
    customErrorObject: (req, res, _err: Error, val: { latencyMs?: number }) => ({ ...requestLine(app, req, res), latencyMs: val.latencyMs }),
  };
}

/**
 * The request line without pino-http (the gateway's data-plane edge): written once, when the response
 * closes, with the same fields, level and message as pino-http writes for the other routes, and without an
 * AsyncLocalStorage context per request. `t0`: `performance.now()` when the request arrived.
 */
export function requestLineWriter(
  app: ObservedApp,
  level: AppConfig['logLevel'],
  format: AppConfig['logFormat'] = 'json',
): (req: IncomingMessage, res: ServerResponse, t0: number) => void {
  const threshold = LEVELS[level];
  const logger = rootLogger(level, format);
  return (req, res, t0) => {
    if (threshold > LEVELS.warn) return;
    const line = requestLine(app, req, res);
    const status = line.status;
    const wanted: LevelWithSilent = typeof status === 'number' && status >= 500 ? 'warn' : 'info';
    if (LEVELS[wanted] < threshold) return;
    logger[wanted]({ requestId: requestIdOf(req), ...line, latencyMs: Math.round(performance.now() - t0) }, message(status));
  };
}

/**
 * The request line as Express middleware, for an app's routes that do not write their own (the gateway's
 * probes, `/v1/models`, `/metrics`, `/admin/circuits`): `requestLineWriter` without pino-http, so no
 * AsyncLocalStorage context is ever entered (its promise hooks, once on, cost every promise of the process).
 */
export function requestLogMiddleware(
  app: ObservedApp,
  level: AppConfig['logLevel'],
  format: AppConfig['logFormat'] = 'json',
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const write = requestLineWriter(app, level, format);
  return (req, res, next) => {
    if (!QUIET_PATHS.has(pathOnly(req.url) ?? '')) {
      const t0 = performance.now();
      res.once('close', () => write(req, res, t0));
    }
    next();
  };
}

/**
 * nestjs-pino for one app: JSON lines on stdout (readable lines with LOG_FORMAT=pretty), LOG_LEVEL respected (`silent` in tests that want it).
 * `pinoHttp: false` keeps its logger (Nest's own lines) without its per-request middleware: the app then
 * writes request lines itself (`requestLogMiddleware`, the gateway's data-plane edge).
 */
export function requestLoggerModule(app: ObservedApp, opts: { pinoHttp: boolean } = { pinoHttp: true }): DynamicModule {
  return LoggerModule.forRootAsync({
    inject: [APP_CONFIG],
    useFactory: (cfg: AppConfig): Params => ({
      pinoHttp: pinoHttpOptions(app, cfg.logLevel, cfg.logFormat),
      forRoutes: opts.pinoHttp ? [{ path: ALL_ROUTES_PATH, method: RequestMethod.ALL }] : [],
    }),
  });
}
