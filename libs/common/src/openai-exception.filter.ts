import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Errors, OpenAIError, OpenAIErrorBody, errorTypeForStatus } from './openai-error';
import { requestIdOf } from './request-id';
import { unsupportedMediaType } from './request-body';

/**
 * Global filter: whatever was thrown, the client gets `{"error":{message,type,param,code}}`
 * and the request id it can quote to an operator. Body-parser and validation errors become 4xx, never 500.
 */
@Catch()
export class OpenAIExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    writeOpenAIError(ctx.getRequest<Request>(), ctx.getResponse<Response>(), exception, this.logger);
  }
}

/**
 * The filter's answer on node's own request and response (the data-plane edge uses it without Nest): the
 * OpenAI-shaped error with its headers, as Express's `res.json` writes it; a 500 we did not mean is logged
 * with its stack.
 */
export function writeOpenAIError(req: IncomingMessage, res: ServerResponse, exception: unknown, logger: Pick<Logger, 'error'>): void {
  const err = toOpenAIError(exception);
  if (err.getStatus() >= 500 && !(exception instanceof OpenAIError)) {
    logger.error(`request ${requestIdOf(req)} failed: ${(exception as Error)?.stack ?? String(exception)}`);
  }
  if (res.headersSent) {
    // A stream already started: the stream writer owns the error event; just make sure the socket ends.
    if (!res.writableEnded) res.end();
    return;
  }
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.statusCode = err.getStatus();
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(err.body));
}

/** `Key (model_pattern, tenant_id)=(gpt-4o, …) already exists.` → the first column, as the API names it. */
function conflictingField(detail: string | undefined): string | null {
  const m = /^Key \(([a-z_]+)(?:,[^)]*)?\)=/.exec(detail ?? '');
  return m ? m[1].replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) : null;
}

/**
 * PostgreSQL integrity errors (TypeORM's QueryFailedError carries the driver's SQLSTATE as `code`):
 * a check-then-insert that lost a race, or an object deleted while another request referred to it, is
 * the client's conflict, not a 500.
 *   23505 unique_violation      → 409 `conflict` (param: the first column of the violated key)
 *   23503 foreign_key_violation → 409 `conflict` when a row is still referred to (delete), else 400
 *                                 `invalid_reference` (the object referred to no longer exists)
 *   22xxx data_exception        → 400 `invalid_value`
 *   23502, 23514 (not null, check) → 400 `invalid_value` (a backstop: validation should have said which field)
 */
function fromDatabase(e: { code?: unknown; detail?: unknown; message?: unknown; driverError?: { code?: unknown; detail?: unknown } }): OpenAIError | undefined {
  const code = typeof e.code === 'string' ? e.code : e.driverError?.code;
  // Class 22 (data exception: a NUL byte, an invalid byte sequence, a value out of range) is what the client
  // sent that the database cannot store or compare: its fault, not ours.
  if (typeof code === 'string' && code.startsWith('22')) {
    return Errors.badRequest(
      'A value in this request cannot be stored or compared (e.g. it contains a NUL character or is out of range).',
      null,
      'invalid_value',
    );
  }
  // 23502 not_null_violation, 23514 check_violation: a value the API let through that the schema refuses.
  if (code === '23502' || code === '23514') {
    return Errors.badRequest('A value in this request is missing or out of the allowed range.', null, 'invalid_value');
  }
  if (code !== '23505' && code !== '23503') return undefined;
  const detail = typeof e.detail === 'string' ? e.detail : typeof e.driverError?.detail === 'string' ? e.driverError.detail : undefined;
  if (code === '23505') {
    const field = conflictingField(detail);
    return Errors.conflict(`This conflicts with an existing object${field ? `: ${field} is already taken` : ''}.`, field);
  }
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a driver error's message, whatever its type
  if ((detail ?? '').includes('is still referenced') || String(e.message ?? '').includes('update or delete on table')) {
    return Errors.conflict('This object is still referred to by others; remove those first.');
  }
  return Errors.badRequest('This refers to an object that does not exist (any more).', null, 'invalid_reference');
}

export function toOpenAIError(exception: unknown): OpenAIError {
  if (exception instanceof OpenAIError) return exception;
  const db = exception && typeof exception === 'object' ? fromDatabase(exception) : undefined;
  if (db) return db;
  const e = exception as { type?: string; status?: number; statusCode?: number; limit?: number; message?: string };
  // body-parser errors carry a `type`
  if (e?.type === 'entity.too.large') return Errors.payloadTooLarge(e.limit ? `${e.limit} bytes` : 'configured');
  if (e?.type === 'entity.parse.failed')
    return Errors.badRequest(`We could not parse the JSON body of your request: ${e.message ?? ''}`.trim(), null, 'invalid_json');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return unsupportedMediaType(`${e.message ?? 'Unsupported encoding'}.`);
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const body = exception.getResponse() as string | { message?: string | string[]; error?: unknown };
    if (typeof body === 'object' && body && typeof body.error === 'object' && body.error !== null) {
      const b = body as unknown as OpenAIErrorBody;
      return new OpenAIError(status, b.error.message, b.error.type, b.error.code, b.error.param);
    }
    const raw = typeof body === 'string' ? body : body?.message;
    const message = Array.isArray(raw) ? raw.join('; ') : (raw ?? exception.message);
    const param = Array.isArray(raw) && raw.length ? String(raw[0]).split(' ')[0] : null;
    const code = status === 404 ? 'not_found' : status === 401 ? 'invalid_api_key' : status === 429 ? 'rate_limit_exceeded' : null;
    return new OpenAIError(status, message, errorTypeForStatus(status), code, status === 400 ? param : null);
  }
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new OpenAIError(status, e.message ?? 'Bad request', errorTypeForStatus(status));
  }
  return new OpenAIError(500, 'The gateway had an internal error. Quote the x-request-id header when reporting it.', 'server_error', 'internal_error');
}
