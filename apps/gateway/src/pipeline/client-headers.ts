import type { IncomingHttpHeaders } from 'node:http';
import type { ResolvedProvider } from '@gw/providers';

/**
 * The client's request headers a native provider (the OpenAI wire, or the Responses API natively) is sent,
 * and no others: what Codex 0.169 sends and OpenAI's API reads (prompt-cache routing by session, its beta
 * features such as remote compaction v2, attribution). Credentials (`authorization`, `cookie`, `x-api-key`,
 * `chatgpt-account-id`, `x-oai-attestation`, …), hop-by-hop headers (`connection`, `host`, `proxy-*`,
 * `transfer-encoding`, …) and body framing are never in it: the provider's credential is the gateway's, set
 * by its adapter after these. Add a name here, never a pattern.
 */
export const FORWARDED_CLIENT_HEADERS: readonly string[] = [
  // Codex's session and thread (0.169 sends the hyphenated names; older versions `session_id`).
  'session-id',
  'session_id',
  'thread-id',
  'thread_id',
  'conversation_id',
  'x-client-request-id',
  // Who is calling, and with which beta features.
  'originator',
  'user-agent',
  'version',
  'openai-beta',
  'x-codex-beta-features',
  'x-codex-turn-metadata',
  'x-codex-turn-state',
  'x-codex-window-id',
  'x-codex-installation-id',
  'x-codex-parent-thread-id',
  'x-openai-subagent',
  'x-responsesapi-include-timing-metrics',
];

/** One forwarded value's bound (Codex's turn metadata is about 1 KB); a longer one is left out, not cut. */
const MAX_VALUE = 4096;

/**
 * The allow-listed headers of a request, as they are forwarded (undefined: none). A header the request's
 * `Connection` names is hop-by-hop for this hop (RFC 9110 §7.6.1): never forwarded, even if listed.
 */
export function forwardedClientHeaders(h: IncomingHttpHeaders): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  const conn = h.connection;
  // The usual `keep-alive` / `close` costs no split.
  const hop =
    conn && !/^(keep-alive|close)$/i.test(conn)
      ? conn
          .toLowerCase()
          .split(',')
          .map((t) => t.trim())
      : undefined;
  for (const name of FORWARDED_CLIENT_HEADERS) {
    const v = h[name];
    if (typeof v !== 'string' || v.length > MAX_VALUE || hop?.includes(name)) continue;
    (out ??= {})[name] = v;
  }
  return out;
}

/**
 * The forwarded headers for provider `p` asked for `op`: only where the request goes in the client's own wire
 * format (OpenAI's API, or the Responses API natively); a translated request's target gets none.
 */
export function clientHeadersFor(
  h: Record<string, string> | undefined,
  p: { kind: string; responsesNative: boolean },
  op: string,
): Record<string, string> | undefined {
  return h && (p.kind === 'openai' || (op === 'responses' && p.responsesNative)) ? h : undefined;
}

/**
 * An upstream call's headers: the client's allowed ones, ours, then the adapter's (the gateway's credential)
 * last. `client.clientHeaders` is read only for a native target (it is picked from the request on first use).
 */
export function upstreamHeadersFor(
  client: { readonly clientHeaders?: Record<string, string> },
  p: ResolvedProvider,
  op: string,
  stream: boolean,
): Record<string, string> {
  const native = p.kind === 'openai' || (op === 'responses' && p.responsesNative);
  return {
    ...(native ? client.clientHeaders : undefined),
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    ...p.adapter.headers(p),
  };
}

/** What a session id may be in the ledger: printable, no spaces, bounded (client-chosen, never trusted). */
const SESSION_ID = /^[\w.:-]{1,128}$/;

/**
 * The client's session, for the ledger and usage by session: Codex's `session-id` header (or `session_id`),
 * else the body's `prompt_cache_key` (Codex sets it to its thread id; other clients name a conversation with
 * it). A value outside `[A-Za-z0-9_.:-]{1,128}` is not recorded.
 */
export function sessionIdOf(h: IncomingHttpHeaders, body: unknown): string | null {
  for (const v of [h['session-id'], h.session_id, body && typeof body === 'object' ? (body as { prompt_cache_key?: unknown }).prompt_cache_key : undefined]) {
    if (typeof v === 'string' && SESSION_ID.test(v)) return v;
  }
  return null;
}

/** An upstream's response header worth echoing (its request id, its model): visible ASCII, bounded. */
export function upstreamHeaderValue(v: string | string[] | undefined): string | null {
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s.length > 0 && s.length <= 200 && /^[\x21-\x7e]+$/.test(s) ? s : null;
}
