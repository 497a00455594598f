import { bearerToken } from './header-bearer.strategy';
import { buildIpList, looksLikeVirtualKey } from './pre-body.authenticator';

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
    for (const t of ['sk-gw-', 'sk-gw-short', `sk-${'A'.repeat(32)}`, `sk-gw-${'A'.repeat(31)}!`, `sk-gw-${'A'.repeat(101)}`, `gwa-${'A'.repeat(32)}`, `SK-GW-${'A'.repeat(32)}`]) {
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
    for (const bad of ['10.0.0.0/33', '1.2.3.999', '::1/129', 'x', '10.0.0.0/8/8', '10.0.0.0/abc']) expect(`${bad}: ${buildIpList(['127.0.0.1', bad]).ok}`).toBe(`${bad}: false`);
  });
});
