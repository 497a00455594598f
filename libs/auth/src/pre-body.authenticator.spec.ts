import type { KeyLookup, Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { bearerToken } from './header-bearer.strategy';
import { PreBodyAuthenticator, buildIpList, looksLikeVirtualKey } from './pre-body.authenticator';

const KEY = `sk-gw-${'A'.repeat(32)}`;
const principal = (over: Partial<Principal> = {}): Principal => ({
  keyId: 'k1',
  keyName: 'k',
  keyPrefix: 'sk-gw-AAAAAA',
  tenantId: 't1',
  tenantName: 'acme',
  allowedModels: null,
  allowedIps: null,
  expiresAt: null,
  keyLimits: {},
  tenantLimits: {},
  ...over,
});

/** The authenticator over a key set answering `answer` (what KeyCache.lookup would say), counting lookups. */
function setup(answer: KeyLookup) {
  const keys = { lookups: 0, lookup: (_secret: string) => (keys.lookups++, answer) };
  return { auth: new PreBodyAuthenticator(keys as any), keys };
}
const req = (authorization?: string, ip = '127.0.0.1') =>
  ({ headers: authorization === undefined ? {} : { authorization }, socket: { remoteAddress: ip } }) as unknown as Request;

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
    for (const [reason, message] of [
      ['unknown', /Incorrect API key/],
      ['expired', /expired/],
    ] as const) {
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

describe('bearerToken', () => {
  it('reads `Bearer <token>` from the header only, the scheme in any case', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    for (const h of [undefined, '', 'Bearer', 'Bearer a b', 'Basic abc', 'abc', ['Bearer abc']]) expect(bearerToken(h as string)).toBeUndefined();
  });
});

describe('looksLikeVirtualKey', () => {
  it('accepts sk-gw- and base64url of a sane length, nothing else (no lookup for garbage)', () => {
    expect(looksLikeVirtualKey(`sk-gw-${'A'.repeat(32)}`)).toBe(true);
    expect(looksLikeVirtualKey('sk-gw-Ab3_-dE6gHAb3_-dE6gHAb3_-dE6gHzz')).toBe(true);
    for (const t of [
      'sk-gw-',
      'sk-gw-short',
      `sk-${'A'.repeat(32)}`,
      `sk-gw-${'A'.repeat(31)}!`,
      `sk-gw-${'A'.repeat(101)}`,
      `gwa-${'A'.repeat(32)}`,
      `SK-GW-${'A'.repeat(32)}`,
    ]) {
      expect(`${t}: ${looksLikeVirtualKey(t)}`).toBe(`${t}: false`);
    }
  });
});

describe('buildIpList', () => {
  it('builds IPv4 and IPv6 addresses and ranges', () => {
    const r = buildIpList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.list.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(r.list.check('192.168.1.7', 'ipv4')).toBe(true);
    expect(r.list.check('192.168.1.8', 'ipv4')).toBe(false);
    expect(r.list.check('2001:db8::1', 'ipv6')).toBe(true);
  });

  it('reports a list it cannot build instead of throwing', () => {
    for (const bad of ['10.0.0.0/33', '1.2.3.999', '::1/129', 'x', '10.0.0.0/8/8', '10.0.0.0/abc'])
      expect(`${bad}: ${buildIpList(['127.0.0.1', bad]).ok}`).toBe(`${bad}: false`);
  });
});
