import { redactForAudit } from './audit.redact';

describe('redactForAudit', () => {
  it('drops secrets and hashes in both namings, recursively, and keeps the rest', () => {
    const row = {
      id: 'k1',
      key_hash: 'abc',
      keyHash: 'abc',
      secret: 'sk-gw-x',
      tokensPerMinute: 5,
      nested: { credential_enc: 'v1:…', credential: 'sk-upstream', token_hash: 'h', tokenHash: 'h', name: 'n' },
      list: [{ secret: 's', ok: true }],
    };
    expect(redactForAudit(row)).toEqual({ id: 'k1', tokensPerMinute: 5, nested: { name: 'n' }, list: [{ ok: true }] });
    expect(row.secret).toBe('sk-gw-x');
  });

  it('redacts credential-like header values', () => {
    expect(redactForAudit({ settings: { headers: { Authorization: 'Bearer x', 'X-Title': 't', 'x-api-key': 'k' } } })).toEqual({
      settings: { headers: { Authorization: '[redacted]', 'X-Title': 't', 'x-api-key': '[redacted]' } },
    });
  });

  it('inside headers, redacts any name that looks like it carries a credential', () => {
    expect(redactForAudit({ settings: { headers: { 'X-Goog-Api-Key': 'g', 'X-Auth-Token': 't', 'X-Client-Secret': 's', 'HTTP-Referer': 'r' } } })).toEqual({
      settings: { headers: { 'X-Goog-Api-Key': '[redacted]', 'X-Auth-Token': '[redacted]', 'X-Client-Secret': '[redacted]', 'HTTP-Referer': 'r' } },
    });
  });

  it('passes scalars and null through', () => {
    expect(redactForAudit(null)).toBeNull();
    expect(redactForAudit('x')).toBe('x');
  });
});
