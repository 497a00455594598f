import type { KeyLookup, Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { PreBodyAuthenticator } from './pre-body.authenticator';

const KEY = `sk-gw-${'A'.repeat(32)}`;
const principal = (over: Partial<Principal> = {}): Principal => ({
  keyId: 'k1', keyName: 'k', keyPrefix: 'sk-gw-AAAAAA', tenantId: 't1', tenantName: 'acme', allowedModels: null, allowedIps: null,
  expiresAt: null, keyLimits: {}, tenantLimits: {}, ...over,
});

/** The authenticator over a key set answering `answer` (what KeyCache.lookup would say), counting lookups. */
function setup(answer: KeyLookup) {
  const keys = { lookups: 0, lookup: (_secret: string) => (keys.lookups++, answer) };
  return { auth: new PreBodyAuthenticator(keys as any), keys };
}
const req = (authorization?: string, ip = '127.0.0.1') => ({ headers: authorization === undefined ? {} : { authorization }, socket: { remoteAddress: ip } }) as unknown as Request;

describe('PreBodyAuthenticator', () => {
  it('no credential: 401 missing_api_key, not a guess, no lookup', () => {
    const { auth, keys } = setup({ ok: true, principal: principal() });
    const d = auth.authenticate(req());
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect(d.guess).toBe(false);
    expect(d.error.getStatus()).toBe(401);
    expect(d.error.body.error.code).toBe('missing_api_key');
    expect(keys.lookups).toBe(0);
  });

  it('another scheme or a token not shaped like a key: 401 invalid_api_key, a guess, no lookup', () => {
    const { auth, keys } = setup({ ok: true, principal: principal() });
    for (const h of ['Basic dXNlcjpwYXNz', 'Bearer not-a-key', `Bearer ${KEY} extra`]) {
      const d = auth.authenticate(req(h));
      expect(d.ok || [d.error.body.error.code, d.guess]).toEqual(['invalid_api_key', true]);
    }
    expect(keys.lookups).toBe(0);
  });

  it('unknown and expired keys: 401, a guess; one lookup each', () => {
    for (const [reason, message] of [['unknown', /Incorrect API key/], ['expired', /expired/]] as const) {
      const { auth, keys } = setup({ ok: false, reason });
      const d = auth.authenticate(req(`Bearer ${KEY}`));
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect([d.error.getStatus(), d.guess]).toEqual([401, true]);
      expect(d.error.body.error.message).toMatch(message);
      expect(keys.lookups).toBe(1);
    }
  });

  it('before the key set is loaded: 503 keys_not_loaded with Retry-After, not a guess', () => {
    const { auth } = setup({ ok: false, reason: 'not_ready' });
    const d = auth.authenticate(req(`Bearer ${KEY}`));
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect([d.error.getStatus(), d.error.body.error.code, d.guess]).toEqual([503, 'keys_not_loaded', false]);
    expect(d.error.headers).toMatchObject({ 'Retry-After': '1' });
  });

  it('a known key from outside its allowedIps: 403 ip_not_allowed, not a guess, the principal named (for the ledger)', () => {
    const { auth } = setup({ ok: true, principal: principal({ allowedIps: ['10.0.0.0/8'] }) });
    const d = auth.authenticate(req(`Bearer ${KEY}`, '192.0.2.1'));
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect([d.error.getStatus(), d.error.body.error.code, d.guess]).toEqual([403, 'ip_not_allowed', false]);
    expect(d.principal?.keyId).toBe('k1');
    expect(auth.authenticate(req(`Bearer ${KEY}`, '10.1.2.3')).ok).toBe(true);
  });

  it('a valid key: the principal', () => {
    const p = principal();
    const { auth } = setup({ ok: true, principal: p });
    expect(auth.authenticate(req(`bearer  ${KEY} `))).toEqual({ ok: true, principal: p });
  });
});
