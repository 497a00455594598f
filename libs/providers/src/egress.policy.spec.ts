import { ConfigError } from '@gw/config';
import { EgressPolicy, addressBytes, hostPortOf, parseEgressEntry } from './egress.policy';

const LOCAL = ['127.0.0.1', '::1', '10.1.2.3', 'fe80::1'];
const policy = (o: ConstructorParameters<typeof EgressPolicy>[0] = {}) =>
  new EgressPolicy({
    ownPorts: [8080, 8081],
    internalUrls: [
      { what: 'DATABASE_URL', url: 'postgres://postgres@127.0.0.1:5432/test' },
      { what: 'REDIS_URL', url: 'redis://redis.internal' },
    ],
    localAddresses: LOCAL,
    ...o,
  });

describe('EgressPolicy', () => {
  const p = policy();
  const allowed = (host: string, port = 80) => p.check(host, port).allowed;

  it.each([
    ['169.254.169.254', 80],
    ['[fd00:ec2::254]', 80],
    ['100.100.100.200', 80],
    ['metadata.google.internal', 80],
    ['METADATA.google.internal.', 80],
    ['169.254.1.1', 443],
    ['fe80::1234', 80],
    ['0.0.0.0', 11434],
    ['0.1.2.3', 80],
    ['::', 80],
    ['224.0.0.1', 80],
    ['255.255.255.255', 80],
    ['ff02::1', 80],
  ])('denies %s:%d by default', (host, port) => expect(allowed(host, port)).toBe(false));

  it('names the rule that denied', () => {
    expect(p.check('169.254.169.254', 80)).toEqual({ allowed: false, rule: 'built-in: cloud metadata (169.254.169.254)' });
    expect(p.check('169.254.3.3', 80).rule).toMatch(/link-local/);
  });

  it('treats IPv4 hidden in IPv6 (mapped, compatible, NAT64) as the IPv4 address', () => {
    expect(allowed('::ffff:169.254.169.254')).toBe(false);
    expect(allowed('[::ffff:a9fe:a9fe]')).toBe(false);
    expect(allowed('::169.254.169.254')).toBe(false);
    expect(allowed('64:ff9b::a9fe:a9fe')).toBe(false);
    expect(allowed('::ffff:127.0.0.1', 5432)).toBe(false);
    expect(allowed('::ffff:8.8.8.8', 443)).toBe(true);
  });

  it('allows loopback, private ranges and public addresses by default (README walkthrough, a local Ollama)', () => {
    expect(allowed('127.0.0.1', 11434)).toBe(true);
    expect(allowed('localhost', 11434)).toBe(true);
    expect(allowed('::1', 4000)).toBe(true);
    expect(allowed('10.0.0.5', 8000)).toBe(true);
    expect(allowed('192.168.1.10', 11434)).toBe(true);
    expect(allowed('api.openai.com', 443)).toBe(true);
    expect(allowed('8.8.8.8', 443)).toBe(true);
  });

  it("denies the gateway's own ports on every local address, and only there", () => {
    for (const h of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '10.1.2.3', '[::ffff:127.0.0.1]']) {
      expect(p.check(h, 8080)).toEqual({ allowed: false, rule: "built-in: the gateway's own port 8080" });
      expect(allowed(h, 8081)).toBe(false);
    }
    expect(allowed('10.9.9.9', 8080)).toBe(true);
    expect(allowed('example.com', 8080)).toBe(true);
  });

  it("denies DATABASE_URL's host:port (and its loopback equivalents) and REDIS_URL's (default port)", () => {
    for (const h of ['127.0.0.1', 'localhost', '::1', '127.0.0.53', 'app.localhost'])
      expect(p.check(h, 5432)).toEqual({ allowed: false, rule: 'built-in: DATABASE_URL (127.0.0.1:5432)' });
    expect(allowed('127.0.0.1', 5433)).toBe(true);
    expect(allowed('10.0.0.9', 5432)).toBe(true);
    expect(p.check('redis.internal', 6379).rule).toBe('built-in: REDIS_URL (redis.internal:6379)');
    expect(allowed('redis.internal', 6380)).toBe(true);
  });

  it('checks every resolved address: one denied is enough', () => {
    expect(p.checkResolved(['93.184.216.34'], 443, 'ok.test').allowed).toBe(true);
    expect(p.checkResolved(['93.184.216.34', '169.254.169.254'], 443, 'evil.test')).toEqual({
      allowed: false,
      rule: 'built-in: cloud metadata (169.254.169.254)',
    });
    expect(p.checkResolved(['127.0.0.1'], 5432, 'db.test').allowed).toBe(false);
    expect(p.checkResolved([], 443, 'x.test').allowed).toBe(false);
    expect(p.checkResolved(['not-an-ip'], 443).allowed).toBe(false);
    expect(p.checkResolved(['10.0.0.1'], 80, 'metadata.google.internal').allowed).toBe(false);
  });

  it('EGRESS_DENY tightens: CIDRs, keywords, ports, names and suffixes', () => {
    const t = policy({ deny: 'loopback, 10.0.0.0/8:9000, [fd00::/8]:443, *.corp.example, internal-api:8443, *:25' });
    expect(t.check('127.0.0.1', 11434)).toEqual({ allowed: false, rule: 'EGRESS_DENY loopback' });
    expect(t.check('::1', 3000).allowed).toBe(false);
    expect(t.check('10.2.3.4', 9000).allowed).toBe(false);
    expect(t.check('10.2.3.4', 9001).allowed).toBe(true);
    expect(t.check('fd12::1', 443).allowed).toBe(false);
    expect(t.check('fd12::1', 80).allowed).toBe(true);
    expect(t.check('api.corp.example', 443).allowed).toBe(false);
    expect(t.check('internal-api', 8443).allowed).toBe(false);
    expect(t.check('8.8.8.8', 25).allowed).toBe(false);
    expect(t.check('8.8.8.8', 443).allowed).toBe(true);
  });

  it('EGRESS_DEFAULT=deny keeps only what EGRESS_ALLOW names, and never re-opens a built-in deny', () => {
    const t = policy({ defaultVerdict: 'deny', allow: 'api.openai.com, 10.0.0.0/8, 127.0.0.1:11434, 169.254.169.254, 127.0.0.1:5432' });
    expect(t.check('api.openai.com', 443).allowed).toBe(true);
    expect(t.checkResolved(['104.18.1.1'], 443, 'api.openai.com').allowed).toBe(true);
    expect(t.checkResolved(['169.254.169.254'], 443, 'api.openai.com').allowed).toBe(false);
    expect(t.check('10.3.3.3', 80).allowed).toBe(true);
    expect(t.check('127.0.0.1', 11434).allowed).toBe(true);
    expect(t.check('127.0.0.1', 11435)).toEqual({ allowed: false, rule: 'EGRESS_DEFAULT deny (not in EGRESS_ALLOW)' });
    expect(t.checkResolved(['8.8.8.8'], 443, 'other.example').allowed).toBe(false);
    expect(t.check('169.254.169.254', 80).allowed).toBe(false);
    expect(t.check('127.0.0.1', 5432).allowed).toBe(false);
  });

  it('an IPv6 range never covers IPv4 (stored mapped), unless written in the mapped form', () => {
    const t = policy({ deny: '::/0' });
    expect(t.check('2001:db8::1', 443).allowed).toBe(false);
    expect(t.check('8.8.8.8', 443).allowed).toBe(true);
    expect(policy({ deny: '::ffff:0:0/96' }).check('8.8.8.8', 443).allowed).toBe(false);
    expect(policy({ deny: '0.0.0.0/0' }).check('2001:db8::1', 443).allowed).toBe(true);
  });

  it('EGRESS_DENY wins over EGRESS_ALLOW', () => {
    expect(policy({ allow: '10.0.0.0/8', deny: '10.0.0.7' }).check('10.0.0.7', 80)).toEqual({ allowed: false, rule: 'EGRESS_DENY 10.0.0.7' });
  });

  it('refuses bad entries at start, naming the variable', () => {
    expect(() => policy({ deny: '10.0.0.0/33' })).toThrow(ConfigError);
    expect(() => policy({ allow: 'ok.example, 1.2.3.4:99999' })).toThrow(/EGRESS_ALLOW: "1.2.3.4:99999"/);
    expect(() => policy({ deny: 'http://x' })).toThrow(/EGRESS_DENY/);
    expect(() => policy({ deny: '1.2.3.999' })).toThrow(/EGRESS_DENY/);
    expect(typeof parseEgressEntry('[::1]:8080')).toBe('object');
    expect(typeof parseEgressEntry('fd00::/8')).toBe('object');
  });

  it('resolves the names of DATABASE_URL / REDIS_URL at start and denies their addresses with the port', async () => {
    const resolver = async (h: string) => (h === 'db' ? [{ address: '172.18.0.2', family: 4 }] : h === 'cache' ? [{ address: '127.0.0.1', family: 4 }] : []);
    const t = await EgressPolicy.create(
      { egressDefault: 'allow', gatewayPort: 8080, adminPort: 8081, databaseUrl: 'postgres://u:p@db:5432/x', redisUrl: 'redis://cache:6379' },
      resolver,
    );
    expect(t.check('db', 5432).allowed).toBe(false);
    expect(t.check('172.18.0.2', 5432).rule).toBe('built-in: DATABASE_URL (db:5432 = 172.18.0.2)');
    expect(t.check('172.18.0.2', 80).allowed).toBe(true);
    expect(t.check('127.0.0.1', 6379).allowed).toBe(false);
    expect(t.check('::1', 6379).allowed).toBe(false);
  });

  it('resolves EGRESS_DENY names at start too (docker compose: admin:8081 is another container)', async () => {
    const resolver = async (h: string) => (h === 'admin' ? [{ address: '172.18.0.5', family: 4 }] : []);
    const t = await EgressPolicy.create({ egressDefault: 'allow', egressDeny: 'admin:8081, *.corp', gatewayPort: 8080, adminPort: 8081 }, resolver);
    expect(t.check('admin', 8081).allowed).toBe(false);
    expect(t.check('172.18.0.5', 8081)).toEqual({ allowed: false, rule: 'EGRESS_DENY admin:8081 (admin:8081 = 172.18.0.5)' });
    expect(t.check('172.18.0.5', 8000).allowed).toBe(true);
  });

  it('parses addresses and URLs', () => {
    expect([...addressBytes('1.2.3.4')!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
    expect([...addressBytes('::ffff:1.2.3.4')!]).toEqual([...addressBytes('1.2.3.4')!]);
    expect([...addressBytes('[2001:db8::1]')!].slice(0, 4)).toEqual([0x20, 0x01, 0x0d, 0xb8]);
    expect(addressBytes('fe80::1%eth0')).toBeDefined();
    expect(addressBytes('example.com')).toBeUndefined();
    expect(hostPortOf('https://API.openai.com/v1')).toEqual({ host: 'api.openai.com', port: 443 });
    expect(hostPortOf('http://[::1]:8080/v1')).toEqual({ host: '::1', port: 8080 });
    expect(hostPortOf('http://2130706433/')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(hostPortOf('redis://r')).toEqual({ host: 'r', port: 6379 });
    expect(hostPortOf('not a url')).toBeUndefined();
  });
});
