import { HttpException } from '@nestjs/common';

/** The one error shape every client of an OpenAI-compatible API understands. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class OpenAIError extends HttpException {
  constructor(
    status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super({ error: { message, type, param, code } } satisfies OpenAIErrorBody, status);
  }

  get body(): OpenAIErrorBody {
    return this.getResponse() as OpenAIErrorBody;
  }
}

export const Errors = {
  badRequest: (message: string, param: string | null = null, code: string | null = null) => new OpenAIError(400, message, 'invalid_request_error', code, param),
  missingKey: () => new OpenAIError(401, 'Missing API key. Send it as "Authorization: Bearer <key>".', 'invalid_request_error', 'missing_api_key'),
  invalidKey: (message = 'Incorrect API key provided.') => new OpenAIError(401, message, 'invalid_request_error', 'invalid_api_key'),
  forbidden: (message: string, code = 'permission_denied') => new OpenAIError(403, message, 'permission_error', code),
  notFound: (message: string, code = 'not_found', param: string | null = null) => new OpenAIError(404, message, 'invalid_request_error', code, param),
  modelNotFound: (model: string, hint = '') =>
    new OpenAIError(404, `The model \`${model}\` does not exist or is not routed by this gateway.${hint}`, 'invalid_request_error', 'model_not_found', 'model'),
  conflict: (message: string, param: string | null = null) => new OpenAIError(409, message, 'invalid_request_error', 'conflict', param),
  payloadTooLarge: (limit: string) =>
    new OpenAIError(413, `Request body is larger than the gateway's limit (${limit}).`, 'invalid_request_error', 'request_too_large'),
  upstream: (status: number, provider: string, message: string, code: string | null = null, type = 'upstream_error') =>
    new OpenAIError(status, `${provider}: ${message}`, type, code),
  timeout: (what: string) => new OpenAIError(504, `Upstream timed out (${what}).`, 'timeout_error', 'upstream_timeout'),
  unavailable: (message: string) => new OpenAIError(503, message, 'server_error', 'service_unavailable'),
};

/** OpenAI's `type` for a status we pass on from an upstream. */
export function errorTypeForStatus(status: number): string {
  if (status === 401) return 'invalid_request_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'invalid_request_error';
  if (status === 429) return 'rate_limit_exceeded';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
