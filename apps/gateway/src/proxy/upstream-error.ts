import { Errors, OpenAIError, errorTypeForStatus, isObject } from '@gw/common';
import { ResolvedProvider, scrubSecrets } from '@gw/providers';
import { errors as undiciErrors } from 'undici';

/**
 * An answer that is not HTTP at all (Redis' `-ERR …`, a database's binary greeting). undici's parser error
 * often has no code; its `data` holds the raw bytes, which never reach a message.
 */
function isNotHttp(e: unknown): boolean {
  return e instanceof undiciErrors.HTTPParserError || (e as { name?: unknown } | null)?.name === 'HTTPParserError';
}

/** Upstream error text kept in our error messages (and logs): enough to act on, never a whole page. */
const MAX_MESSAGE_CHARS = 500;

/** A JSON value from an upstream as a short string: strings as they are, anything else serialised. */
function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '';
  }
}

function clip(s: string): string {
  return s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)}…` : s;
}

/** What an upstream error body says, whatever its shape (OpenAI, OpenRouter, Ollama, a proxy's HTML page). */
export function parseUpstreamError(body: string): { message: string; code: string | null; type: string | null } {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    return { message: clip(body), code: null, type: null };
  }
  if (!isObject(j)) return { message: clip(textOf(j)), code: null, type: null };
  const e = j.error;
  if (isObject(e)) {
    const code = typeof e.code === 'string' && e.code ? e.code : typeof e.code === 'number' && Number.isFinite(e.code) ? String(e.code) : null;
    return {
      message: clip(textOf(e.message)),
      code: code && code.length <= 100 ? code : null,
      type: typeof e.type === 'string' && e.type.length <= 100 ? e.type : null,
    };
  }
  if (e !== undefined && e !== null) return { message: clip(textOf(e)), code: null, type: null };
  return { message: clip(textOf(j.message)), code: null, type: null };
}

/**
 * Whether an upstream error body is an OpenAI-style error (a JSON object whose `error` is an object), the only
 * kind whose words reach the tenant. Anything else (an HTML page, Redis' `-ERR …`, a database's bytes: what
 * an internal service answers when a provider points at it) is reduced to "upstream answered HTTP <status>";
 * its text goes to the log only (`upstreamBodyForLog`).
 */
export function isOpenAIErrorBody(body: unknown): boolean {
  if (typeof body !== 'string' || body.length > 1_000_000) return false;
  try {
    const j: unknown = JSON.parse(body);
    return isObject(j) && isObject(j.error);
  } catch {
    return false;
  }
}

/** Upstream error text as the log shows it: secrets scrubbed, at most 2,000 characters (control bytes escaped by the JSON logger). */
export function upstreamBodyForLog(body: unknown, credential: string | null): string {
  const text = typeof body === 'string' ? body.slice(0, 4000) : '';
  const out = scrubSecrets(text, credential);
  return out.length > 2000 ? `${out.slice(0, 2000)}…` : out;
}

/**
 * An upstream's error response in our shape: status kept, message prefixed with the provider's name.
 * Except 401/403: the provider refused the gateway's own credential, which is no fault of the tenant's
 * key, so it becomes `502 upstream_auth_error` (a 401 would make every user think their key is bad);
 * and an exhausted provider account, `503 upstream_quota_exhausted` (see `upstreamQuotaError`).
 */
export function upstreamHttpError(p: ResolvedProvider, status: number, body: string, model: string, retryAfter?: string): OpenAIError {
  // Only an OpenAI-style error body is quoted to the tenant (see isOpenAIErrorBody).
  const parsed = isOpenAIErrorBody(body) ? parseUpstreamError(body) : { message: '', code: null, type: null };
  const said = scrubSecrets(parsed.message, p.credential);
  if (status === 401 || status === 403) {
    return Errors.upstream(
      502,
      p.name,
      `the provider rejected the gateway's credential (HTTP ${status}). This is not a problem with your API key: the gateway's operator must fix the provider's credential or account.${said ? ` Provider said: ${said}` : ''}`,
      'upstream_auth_error',
      'server_error',
    );
  }
  if (upstreamFailureKind(status, body) === 'quota') return upstreamQuotaError(p.name, ` (HTTP ${status})`, said);
  let code = parsed.code;
  const type = parsed.type ?? errorTypeForStatus(status);
  const message = said || `upstream answered HTTP ${status}`;
  if (status === 404 && !code) code = 'model_not_found';
  let hint = '';
  try {
    hint = p.adapter.errorHint(status, model);
  } catch {
    /* a hint is optional */
  }
  const headers: Record<string, string> = {};
  if (status === 429 && retryAfter) headers['retry-after'] = retryAfter;
  return new OpenAIError(status, `${p.name}: ${message}${hint}`, type, code, null, headers);
}

/**
 * What an upstream's error answer means for the dispatcher:
 * - `rate_limit`: 429 (not a quota): back the target off, fail over, never a circuit failure;
 * - `quota`: the gateway's provider account is out of money (429 `insufficient_quota`, OpenRouter's 402): the
 *   operator must act; fail over, else 503 `upstream_quota_exhausted`;
 * - `auth`: 401/403, the provider refused the gateway's credential: fail over, else 502 `upstream_auth_error`;
 * - `server`: 5xx: retried, then fail over; a circuit failure;
 * - `client`: any other 4xx (and a 429 for a request too large for the limit by itself): the request's own
 *   fault, passed on at once.
 */
export type UpstreamFailureKind = 'rate_limit' | 'quota' | 'auth' | 'server' | 'client';

export function upstreamFailureKind(status: number, body: string): UpstreamFailureKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 402) return 'quota';
  if (status === 429) {
    const { code, type, message } = parseUpstreamError(typeof body === 'string' ? body : '');
    if (code === 'insufficient_quota' || type === 'insufficient_quota') return 'quota';
    // "Request too large for … on tokens per min": this request alone exceeds a limit; the target is fine for
    // everyone else, so no backoff (one tenant could otherwise stop a provider for all at will).
    if (/request too large|must be reduced/i.test(message)) return 'client';
    return 'rate_limit';
  }
  return status >= 500 ? 'server' : 'client';
}

/**
 * The upstream could not read encrypted content another account sealed (OpenAI: 400 `invalid_encrypted_content`),
 * e.g. reasoning a session brought home from the target it moved to while home was down.
 */
export function isSealedRefusal(status: number, body: string): boolean {
  return status === 400 && parseUpstreamError(body).code === 'invalid_encrypted_content';
}

/**
 * The provider account the gateway uses is out of credit. Never the client's own `insufficient_quota` (which
 * Codex prints as "Quota exceeded. Check your plan and billing details", blaming the developer): a 503 that
 * names the provider and says the operator must act.
 */
export function upstreamQuotaError(provider: string, detail: string, said = ''): OpenAIError {
  return Errors.upstream(
    503,
    provider,
    `the gateway's account with this provider is out of credit or quota${detail}. This is not your quota or budget: the gateway's operator must add credit or raise the provider account's limits.${said ? ` Provider said: ${said}` : ''}`,
    'upstream_quota_exhausted',
    'server_error',
  );
}

/**
 * Network-level failures (no HTTP answer) in our shape. Only the error's code is shown (ECONNREFUSED,
 * UND_ERR_SOCKET, …): an exception's own text may carry anything, down to our own bugs.
 */
export function upstreamNetworkError(p: ResolvedProvider, e: unknown): OpenAIError {
  const raw = (e as { code?: unknown } | null | undefined)?.code;
  const code = typeof raw === 'string' ? raw : undefined;
  if (isNotHttp(e)) return Errors.upstream(502, p.name, 'did not answer in HTTP', 'bad_upstream_response', 'server_error');
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return Errors.timeout(`${p.name} sent no response within the first-byte timeout`);
    case 'UND_ERR_BODY_TIMEOUT':
      return Errors.timeout(`${p.name} stalled: no data within the idle timeout`);
    case 'UND_ERR_CONNECT_TIMEOUT':
      return Errors.timeout(`connecting to ${p.name}`);
    default:
      return Errors.upstream(502, p.name, code ? `could not be reached (${code})` : 'could not be reached', 'upstream_unreachable', 'server_error');
  }
}

/**
 * Whether an exception from sending a request means the upstream could not be reached (connection,
 * DNS, TLS, timeouts: undici's `UND_ERR_*`, Node's `E*` errno codes, TLS and HTTP-parser codes), as
 * opposed to a bug in our own code, which must neither be retried nor count against the upstream's health.
 */
/** Our undici timeouts (connect, first byte, idle): never retried on the same target. */
export function isTimeoutError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

export function isNetworkError(e: unknown): boolean {
  if (isNotHttp(e)) return true;
  const code = (e as { code?: unknown } | null | undefined)?.code;
  if (typeof code !== 'string') return false;
  return (
    code.startsWith('UND_ERR') ||
    /^E(?!RR_)[A-Z0-9_]+$/.test(code) ||
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    code.startsWith('HPE_') ||
    code.startsWith('CERT_') ||
    code.startsWith('UNABLE_TO_') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ERR_SOCKET_CLOSED'
  );
}

/** What the operator must do when a provider's address is refused by the egress policy. */
export const EGRESS_FIX = "no connection made. Fix the provider's baseUrl or the egress policy (EGRESS_ALLOW / EGRESS_DENY).";

/**
 * undici follows no redirect (and must not: the Location could be any address, unchecked by a create-time
 * check). An API that redirects is misconfigured: up, but not serving here. The Location is the operator's to read.
 */
export function upstreamRedirectError(p: ResolvedProvider, status: number, location: unknown, log: { warn(m: string): void }): OpenAIError {
  const where = JSON.stringify((typeof location === 'string' ? location : '').slice(0, 500));
  log.warn(`${p.name} answered HTTP ${status} (Location: ${where}); redirects are not followed: fix the provider's baseUrl`);
  return Errors.upstream(502, p.name, `answered with a redirect (HTTP ${status}), which the gateway does not follow`, 'upstream_redirect', 'server_error');
}

/** The operator's log line for an error answer that is not OpenAI-shaped (the tenant is told only the status); else undefined. */
export function unknownBodyLogLine(p: ResolvedProvider, status: number, text: string): string | undefined {
  if (!text || isOpenAIErrorBody(text)) return undefined;
  return `${p.name} answered HTTP ${status} with a body that is not an OpenAI error (the client was told only the status): ${JSON.stringify(upstreamBodyForLog(text, p.credential))}`;
}
