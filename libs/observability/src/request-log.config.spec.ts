import { prettyLine } from './request-log.config';

describe('prettyLine (LOG_FORMAT=pretty)', () => {
  it('folds a request line into one readable line: app, method, path, status, latency, tenant, model, provider, tokens, error code', () => {
    const line = prettyLine(
      {
        msg: 'request completed',
        app: 'gateway',
        method: 'POST',
        url: '/v1/chat/completions',
        status: 200,
        latencyMs: 12,
        tenant: 'team-a',
        model: 'gpt-4o-mini',
        provider: 'openai',
        inputTokens: 9,
        outputTokens: 12,
        keyPrefix: 'sk-gw-abc',
      },
      'msg',
    );
    expect(line).toBe('gateway POST /v1/chat/completions 200 12 ms team-a gpt-4o-mini → openai 9+12 tokens');
    expect(prettyLine({ app: 'gateway', method: 'POST', url: '/v1/responses', status: 429, latencyMs: 1, errorCode: 'rate_limit_exceeded' }, 'msg')).toBe(
      'gateway POST /v1/responses 429 1 ms rate_limit_exceeded',
    );
  });

  it('other lines: [context] message, an error with its stack; objects are never printed as [object Object]', () => {
    expect(prettyLine({ context: 'Migrations', msg: 'applied Initial' }, 'msg')).toBe('[Migrations] applied Initial');
    expect(prettyLine({ msg: 'boom', err: { message: 'boom', stack: 'Error: boom\n    at x' } }, 'msg')).toBe('boom\nError: boom\n    at x');
    expect(prettyLine({ context: { nested: true }, msg: { also: 'an object' } }, 'msg')).toBe('');
  });
});
