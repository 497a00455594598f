import { TrustedProxies, addressBucket, clientAddressOf, resolveClientAddress, stampClientAddress } from './client-address';

describe('client address', () => {
  const none = new TrustedProxies();
  const proxies = new TrustedProxies(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8']);

  it('is the TCP peer (IPv4-mapped unwrapped) when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(resolveClientAddress('::ffff:127.0.0.1', '203.0.113.9', none)).toBe('127.0.0.1');
    expect(resolveClientAddress('198.51.100.1', '203.0.113.9', none)).toBe('198.51.100.1');
    expect(resolveClientAddress(undefined, undefined, none)).toBe('');
  });

  it('honours X-Forwarded-For only from a trusted peer, taking the right-most untrusted entry', () => {
    expect(resolveClientAddress('127.0.0.1', '203.0.113.9', proxies)).toBe('203.0.113.9');
    // The client wrote the left part; the proxies appended the rest.
    expect(resolveClientAddress('127.0.0.1', '1.1.1.1, 203.0.113.9, 10.1.2.3', proxies)).toBe('203.0.113.9');
    expect(resolveClientAddress('127.0.0.1', ['1.1.1.1, 203.0.113.9', '10.1.2.3'], proxies)).toBe('203.0.113.9');
    // An untrusted peer's header is ignored.
    expect(resolveClientAddress('198.51.100.1', '203.0.113.9', proxies)).toBe('198.51.100.1');
    // Garbage stops the walk at the last trusted hop, never at what the client wrote.
    expect(resolveClientAddress('127.0.0.1', 'evil, not-an-ip', proxies)).toBe('127.0.0.1');
    expect(resolveClientAddress('127.0.0.1', 'not-an-ip, 10.0.0.1', proxies)).toBe('10.0.0.1');
    // Every hop trusted: the left-most one.
    expect(resolveClientAddress('127.0.0.1', '10.0.0.7, 10.0.0.1', proxies)).toBe('10.0.0.7');
    expect(resolveClientAddress('127.0.0.1', ' [2001:db8::1] , ::ffff:192.0.2.1', proxies)).toBe('192.0.2.1');
    expect(resolveClientAddress('127.0.0.1', '2001:db8::1', proxies)).toBe('2001:db8::1');
    expect(resolveClientAddress('fd00::5', '2001:db8::1', proxies)).toBe('2001:db8::1');
  });

  it('is stamped once per request and read back', () => {
    const req = { socket: { remoteAddress: '127.0.0.1' }, headers: { 'x-forwarded-for': '192.0.2.44' } };
    expect(clientAddressOf({ ...req })).toBe('127.0.0.1');
    stampClientAddress(req, proxies);
    expect(clientAddressOf(req)).toBe('192.0.2.44');
  });

  it('matches IPv4 ranges exactly', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12']);
    expect(['10.0.0.0', '10.255.255.255', '192.168.1.7', '172.31.0.1'].filter((ip) => t.has(ip))).toHaveLength(4);
    expect(['11.0.0.1', '9.255.255.255', '192.168.1.8', '172.32.0.1', '10.0.0', '10.0.0.256', '::1', ''].filter((ip) => t.has(ip))).toEqual([]);
    expect(new TrustedProxies(['0.0.0.0/0']).has('203.0.113.9')).toBe(true);
    expect(new TrustedProxies(['0.0.0.0/0']).has('2001:db8::1')).toBe(false);
  });

  it('rejects a TRUSTED_PROXIES entry that is not an address', () => {
    expect(() => new TrustedProxies(['nope'])).toThrow(/TRUSTED_PROXIES/);
  });

  it('buckets IPv6 per /64 and IPv4 (mapped or not) per address', () => {
    expect(addressBucket('192.0.2.1')).toBe('192.0.2.1');
    expect(addressBucket('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressBucket('::ffff:c000:201')).toBe('192.0.2.1');
    expect(addressBucket('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:0db8:0001:0002:0:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressBucket('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(addressBucket('')).toBe('');
  });
});

describe('addressBucket on odd IPv6 spellings', () => {
  it('agrees with the canonical form, and leaves non-addresses alone', () => {
    for (const [ip, bucket] of [
      ['2001:db8::', '2001:db8:0:0::/64'],
      ['::', '0:0:0:0::/64'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4::/64'],
      ['1::8', '1:0:0:0::/64'],
      ['ABCD:EF01:2345:6789::1', 'abcd:ef01:2345:6789::/64'],
      ['::ffff:10.1.2.3', '10.1.2.3'],
      ['1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8:9'],
      ['1::2::3', '1::2::3'],
      ['12345::1', '12345::1'],
      ['zz::1', 'zz::1'],
    ])
      expect(`${ip} → ${addressBucket(ip)}`).toBe(`${ip} → ${bucket}`);
  });
});
