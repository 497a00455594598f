import { FORWARDED_CLIENT_HEADERS, clientHeadersFor, forwardedClientHeaders, sessionIdOf, upstreamHeaderValue } from './client-headers';

/** What Codex 0.169 sent the fake provider (captured), plus what must never leave. */
const CODEX = {
  'session-id': '01a22f8b-f2a6-7273-8063-51d575ac2090',
  'thread-id': '01a22f8b-f2a6-7273-8063-51d575ac2090',
  'x-client-request-id': '01a22f8b-f2a6-7273-8063-51d575ac2090',
  'x-codex-beta-features': 'remote_compaction_v2',
  'x-codex-window-id': '01a22f8b-f2a6-7273-8063-51d575ac2090:0',
  'x-codex-turn-metadata': '{"session_id":"01a22f8b"}',
  originator: 'codex_exec',
  'user-agent': 'codex_exec/0.169.0 (Debian 12.0.0; x86_64)',
  'openai-beta': 'responses_websockets=2026-02-06',
};
const NEVER = {
  authorization: 'Bearer sk-virtual',
  cookie: 'a=b',
  'x-api-key': 'k',
  'api-key': 'k',
  'proxy-authorization': 'Basic x',
  host: 'gateway:8080',
  connection: 'keep-alive',
  'keep-alive': 'timeout=5',
  'transfer-encoding': 'chunked',
  'content-length': '10',
  'content-encoding': 'gzip',
  'chatgpt-account-id': 'acct',
  'x-oai-attestation': 'att',
  'x-forwarded-for': '10.0.0.1',
  'x-request-id': 'client-id-123',
};

describe('client headers forwarded to native providers', () => {
  it("Codex's headers go through, credentials and hop-by-hop headers never", () => {
    const out = forwardedClientHeaders({ ...CODEX, ...NEVER });
    expect(out).toEqual(CODEX);
    for (const h of Object.keys(NEVER)) expect(FORWARDED_CLIENT_HEADERS).not.toContain(h);
  });

  it('the list is lower-case names (Node lower-cases incoming headers), no patterns, no duplicates', () => {
    for (const h of FORWARDED_CLIENT_HEADERS) expect(h).toMatch(/^[a-z0-9_-]+$/);
    expect(new Set(FORWARDED_CLIENT_HEADERS).size).toBe(FORWARDED_CLIENT_HEADERS.length);
  });

  it('a header the Connection header names is hop-by-hop: not forwarded', () => {
    expect(forwardedClientHeaders({ ...CODEX, connection: 'keep-alive, X-Codex-Window-Id' })?.['x-codex-window-id']).toBeUndefined();
    expect(forwardedClientHeaders({ ...CODEX, connection: 'originator' })?.originator).toBeUndefined();
    expect(forwardedClientHeaders({ ...CODEX, connection: 'close' })).toEqual(CODEX);
  });

  it('none: undefined; an over-long value is left out, not cut', () => {
    expect(forwardedClientHeaders({ authorization: 'Bearer x' })).toBeUndefined();
    expect(forwardedClientHeaders({ originator: 'codex_exec', 'x-codex-turn-metadata': 'x'.repeat(5000) })).toEqual({ originator: 'codex_exec' });
  });

  it('only to a target sent the client’s own wire format', () => {
    const h = { originator: 'codex_exec' };
    expect(clientHeadersFor(h, { kind: 'openai', responsesNative: true }, 'responses')).toBe(h);
    expect(clientHeadersFor(h, { kind: 'openai', responsesNative: false }, 'chat')).toBe(h);
    expect(clientHeadersFor(h, { kind: 'openrouter', responsesNative: true }, 'responses')).toBe(h);
    expect(clientHeadersFor(h, { kind: 'openrouter', responsesNative: false }, 'chat')).toBeUndefined();
    expect(clientHeadersFor(h, { kind: 'ollama', responsesNative: false }, 'chat')).toBeUndefined();
    expect(clientHeadersFor(undefined, { kind: 'openai', responsesNative: true }, 'responses')).toBeUndefined();
  });
});

describe('the session id of a request', () => {
  it("Codex's session-id header, else session_id, else prompt_cache_key; bounded and charset-checked", () => {
    expect(sessionIdOf({ 'session-id': 'abc-1' }, { prompt_cache_key: 'other' })).toBe('abc-1');
    expect(sessionIdOf({ session_id: 'abc_2' }, {})).toBe('abc_2');
    expect(sessionIdOf({}, { prompt_cache_key: 'thread:9' })).toBe('thread:9');
    expect(sessionIdOf({ 'session-id': 'has space' }, { prompt_cache_key: 'ok' })).toBe('ok');
    expect(sessionIdOf({ 'session-id': 'x'.repeat(129) }, null)).toBeNull();
    expect(sessionIdOf({}, { prompt_cache_key: 42 })).toBeNull();
    expect(sessionIdOf({}, { prompt_cache_key: 'é' })).toBeNull();
  });
});

describe("an upstream's header echoed back", () => {
  it('visible ASCII, bounded, first of several', () => {
    expect(upstreamHeaderValue('req_abc123')).toBe('req_abc123');
    expect(upstreamHeaderValue(['a', 'b'])).toBe('a');
    expect(upstreamHeaderValue(undefined)).toBeNull();
    expect(upstreamHeaderValue('')).toBeNull();
    expect(upstreamHeaderValue('a b')).toBeNull();
    expect(upstreamHeaderValue('x'.repeat(201))).toBeNull();
  });
});
