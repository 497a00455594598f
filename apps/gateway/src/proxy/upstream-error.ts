import { Errors, OpenAIError, errorTypeForStatus } from '@gw/common';
import { ResolvedProvider } from '@gw/providers';

/** Keys in upstream error messages (OpenAI echoes a masked one) never reach our clients or logs. */
export function scrubSecrets(text: string, credential: string | null): string {
  let out = credential ? text.split(credential).join('[redacted]') : text;
  out = out.replace(/\b(sk|rk|or|pk)-[A-Za-z0-9_*\-]{6,}/g, '$1-[redacted]');
  return out;
}

/** An upstream's error response in our shape: status kept, message prefixed with the provider's name. */
export function upstreamHttpError(p: ResolvedProvider, status: number, body: string, model: string, retryAfter?: string): OpenAIError {
  let message = '';
  let code: string | null = null;
  let type = errorTypeForStatus(status);
  try {
    const j = JSON.parse(body) as { error?: { message?: string; code?: unknown; type?: string } | string; message?: string };
    if (typeof j.error === 'string') message = j.error;
    else if (j.error) {
      message = j.error.message ?? '';
      code = typeof j.error.code === 'string' ? j.error.code : null;
      if (typeof j.error.type === 'string') type = j.error.type;
    } else if (j.message) message = j.message;
  } catch {
    message = body.slice(0, 500);
  }
  if (!message) message = `upstream answered HTTP ${status}`;
  if (status === 404 && !code) code = 'model_not_found';
  const hint = p.adapter.errorHint(status, model);
  const headers: Record<string, string> = {};
  if (status === 429 && retryAfter) headers['retry-after'] = retryAfter;
  return new OpenAIError(status, `${p.name}: ${scrubSecrets(message, p.credential)}${hint}`, type, code, null, headers);
}

/** Network-level failures (no HTTP answer) in our shape. */
export function upstreamNetworkError(p: ResolvedProvider, e: Error & { code?: string }): OpenAIError {
  switch (e.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return Errors.timeout(`${p.name} sent no response within the first-byte timeout`);
    case 'UND_ERR_BODY_TIMEOUT':
      return Errors.timeout(`${p.name} stalled: no data within the idle timeout`);
    case 'UND_ERR_CONNECT_TIMEOUT':
      return Errors.timeout(`connecting to ${p.name}`);
    default:
      return Errors.upstream(502, p.name, `could not be reached (${e.code ?? e.message})`, 'upstream_unreachable', 'server_error');
  }
}
