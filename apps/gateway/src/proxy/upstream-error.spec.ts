import type { ResolvedProvider } from '@gw/providers';
import { scrubSecrets } from '@gw/providers';
import {
  isNetworkError,
  isOpenAIErrorBody,
  isTimeoutError,
  parseUpstreamError,
  upstreamBodyForLog,
  upstreamFailureKind,
  upstreamHttpError,
  upstreamNetworkError,
} from './upstream-error';

const P = {
  id: 'p',
  name: 'openai',
  kind: 'openai',
  baseUrl: 'http://x/v1',
  credential: 'sk-live-credential-123456',
  settings: {},
  enabled: true,
  responsesNative: true,
  adapter: { errorHint: () => '' },
} as unknown as ResolvedProvider;

describe('upstream errors', () => {
  it.each([
    ['{"error":{"message":123}}', '123'],
    ['{"error":{"message":{"nested":true},"code":42}}', '{"nested":true}'],
    ['null', ''],
    ['[]', '[]'],
    ['"x"', 'x'],
    ['{"error":"plain"}', 'plain'],
    ['{"message":"top"}', 'top'],
    ['<html>bad gateway</html>', '<html>bad gateway</html>'],
  ])('never throws on odd bodies: %s', (body, message) => {
    expect(parseUpstreamError(body).message).toBe(message);
    const err = upstreamHttpError(P, 500, body, 'm');
    expect(err.getStatus()).toBe(500);
    expect(typeof err.body.error.message).toBe('string');
  });

  it('keeps a numeric code as a string and ignores other shapes', () => {
    expect(parseUpstreamError('{"error":{"message":"x","code":42}}').code).toBe('42');
    expect(parseUpstreamError('{"error":{"message":"x","code":{"a":1},"type":7}}')).toEqual({ message: 'x', code: null, type: null });
  });

  it('scrubs keys, the credential, and organization/project ids; accepts non-strings', () => {
    const out = scrubSecrets('key sk-live-credential-123456 org-AbCdEf123456 proj_AbCdEf123456 proj-xyz12345 sk-proj-abcdefgh', P.credential);
    expect(out).not.toMatch(/credential-123456|AbCdEf123456|xyz12345|abcdefgh/);
    expect(out).toContain('org-[redacted]');
    expect(out).toContain('proj_[redacted]');
    expect(scrubSecrets(123, null)).toBe('123');
    expect(scrubSecrets(undefined, null)).toBe('');
  });

  it.each([401, 403])('maps an upstream %d to 502 upstream_auth_error naming the provider', (status) => {
    const err = upstreamHttpError(
      P,
      status,
      '{"error":{"message":"Incorrect API key provided: sk-live-credential-123456 for org-AbCdEf123456","code":"invalid_api_key"}}',
      'm',
    );
    expect(err.getStatus()).toBe(502);
    expect(err.body.error.code).toBe('upstream_auth_error');
    expect(err.body.error.type).toBe('server_error');
    expect(err.body.error.message).toMatch(new RegExp(`^openai: the provider rejected the gateway's credential \\(HTTP ${status}\\)`));
    expect(err.body.error.message).not.toMatch(/credential-123456|AbCdEf123456/);
  });

  it('network errors show the code, never the exception text', () => {
    expect(upstreamNetworkError(P, Object.assign(new Error('secret detail'), { code: 'ECONNREFUSED' })).body.error.message).toBe(
      'openai: could not be reached (ECONNREFUSED)',
    );
    expect(upstreamNetworkError(P, new Error('out.replace is not a function')).body.error.message).toBe('openai: could not be reached');
  });

  it('tells network errors from our own bugs', () => {
    for (const code of [
      'UND_ERR_SOCKET',
      'UND_ERR_CONNECT_TIMEOUT',
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EPIPE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'CERT_HAS_EXPIRED',
    ]) {
      expect(isNetworkError(Object.assign(new Error(), { code }))).toBe(true);
    }
    expect(isNetworkError(new TypeError('x'))).toBe(false);
    expect(isNetworkError(Object.assign(new TypeError('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBe(false);
    expect(isNetworkError(null)).toBe(false);
    expect(isNetworkError({ code: 7 })).toBe(false);
  });

  it.each([
    [429, '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}', 'rate_limit'],
    [429, '{"error":{"message":"Rate limit exceeded","code":429}}', 'rate_limit'],
    [429, '<html>slow down</html>', 'rate_limit'],
    [429, '{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}', 'quota'],
    [429, '{"error":{"message":"quota","type":"insufficient_quota","code":null}}', 'quota'],
    [402, '{"error":{"message":"Insufficient credits","code":402}}', 'quota'],
    [401, '', 'auth'],
    [403, '', 'auth'],
    [400, '', 'client'],
    [404, '', 'client'],
    [500, '', 'server'],
    [503, '', 'server'],
  ])('classifies HTTP %d %s as %s', (status, body, kind) => expect(upstreamFailureKind(status, body)).toBe(kind));

  it("an upstream insufficient_quota is a 503 naming the provider and the operator, never the client's quota code", () => {
    const err = upstreamHttpError(
      P,
      429,
      '{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
      'm',
    );
    expect(err.getStatus()).toBe(503);
    expect(err.body.error).toMatchObject({ type: 'server_error', code: 'upstream_quota_exhausted' });
    expect(err.body.error.message).toMatch(
      /^openai: the gateway's account with this provider is out of credit or quota \(HTTP 429\)\. This is not your quota or budget: the gateway's operator must .* Provider said: You exceeded/,
    );
    expect(err.headers).toEqual({});
  });

  it('timeouts are told apart from other network errors', () => {
    for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) expect(isTimeoutError({ code })).toBe(true);
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'ETIMEDOUT']) expect(isTimeoutError({ code })).toBe(false);
  });
});

describe('upstream error bodies that are not OpenAI errors', () => {
  it.each([
    ["-ERR unknown command 'POST', with args beginning with: '/v1/chat/completions'"],
    ['<html><body>Internal admin console: db password hunter2</body></html>'],
    ['\u0000\u0000\u0000\u0008\u0004\u00d2\u0016/SFATAL C0A000 invalid frontend message'],
    ['{"error":"plain"}'],
    ['{"message":"top"}'],
    ['"x"'],
  ])('tells the tenant the status only: %s', (body) => {
    const err = upstreamHttpError(P, 500, body, 'm');
    expect(err.body.error.message).toBe('openai: upstream answered HTTP 500');
    expect(isOpenAIErrorBody(body)).toBe(false);
  });

  it('keeps an OpenAI-style message, and the Ollama-style 404 hint', () => {
    expect(upstreamHttpError(P, 400, '{"error":{"message":"bad thing","code":"bad_thing"}}', 'm').body.error).toMatchObject({
      message: 'openai: bad thing',
      code: 'bad_thing',
    });
    const hinted = { ...P, adapter: { errorHint: () => ' Pull it.' } } as unknown as ResolvedProvider;
    expect(upstreamHttpError(hinted, 404, '<html>404</html>', 'm').body.error).toMatchObject({
      message: 'openai: upstream answered HTTP 404 Pull it.',
      code: 'model_not_found',
    });
    expect(upstreamHttpError(P, 401, 'Unauthorized: token for admin@corp', 'm').body.error.message).not.toMatch(/admin@corp|Provider said/);
  });

  it('logs a bounded, scrubbed copy', () => {
    const out = upstreamBodyForLog(`${'x'.repeat(3000)} sk-live-credential-123456`, P.credential);
    expect(out.length).toBe(2001);
    expect(upstreamBodyForLog('key sk-live-credential-123456', P.credential)).toBe('key [redacted]');
  });
});

describe('answers that are not HTTP', () => {
  it('an undici parser error (no code, raw bytes in data) is a network error shown without its bytes', () => {
    const { errors } = jest.requireActual<typeof import('undici')>('undici');
    const e = new (errors.HTTPParserError as unknown as new (m: string, c?: string, d?: Buffer) => Error)(
      'Response does not match the HTTP/1.1 protocol',
      undefined,
      Buffer.from('-ERR secret'),
    );
    expect(isNetworkError(e)).toBe(true);
    expect(upstreamNetworkError(P, e).body.error).toMatchObject({ message: 'openai: did not answer in HTTP', code: 'bad_upstream_response' });
  });
});
