import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import type { AppConfig } from '@gw/config';
import { ConfigError } from '@gw/config';

/**
 * Where providers may point. Root can give a provider any `baseUrl`, and every tenant whose route uses it makes
 * the gateway connect there: without a policy that is a way into Redis, the database, the admin port or the
 * cloud's metadata service (credentials) from inside the network. See docs/access-control.md#provider-egress.
 *
 * Order: `EGRESS_DENY` and the built-in denies (which nothing re-opens), then `EGRESS_ALLOW`, then
 * `EGRESS_DEFAULT` (allow unless set to deny). Checked on the URL as written at create/update, and on every
 * address a name resolves to when a connection is opened (so a name cannot be rebound to a denied address).
 */
export interface EgressVerdict {
  allowed: boolean;
  /** The rule that decided, e.g. `built-in: cloud metadata (169.254.169.254)` or `EGRESS_DENY 10.0.0.0/8`. */
  rule: string;
}

export interface EgressChecker {
  /** A host as written in a URL (address literal or name; IPv6 with or without brackets) and a port. */
  check(host: string, port: number): EgressVerdict;
  /** Every address a name resolved to (all must pass; `name` lets an allow-listed name through EGRESS_DEFAULT=deny). */
  checkResolved(addresses: string[], port: number, name?: string): EgressVerdict;
}

/** Resolves a name to all its addresses. Injectable (EGRESS_RESOLVER) so tests can answer without DNS. */
export type EgressResolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const EGRESS_POLICY = Symbol('EGRESS_POLICY');
export const EGRESS_RESOLVER = Symbol('EGRESS_RESOLVER');

export const dnsResolver: EgressResolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));

/** What tenants read when a provider's address is refused; the rule goes to the log only. */
export const EGRESS_DENIED_MESSAGE = "provider address not allowed by the gateway's egress policy";

/** Thrown by the upstream connector instead of connecting: no socket is ever opened. */
export class EgressDeniedError extends Error {
  readonly code = 'EGRESS_DENIED';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly rule: string,
  ) {
    super(`egress to ${host}:${port} denied (${rule})`);
  }
}

export function isEgressDenied(e: unknown): e is EgressDeniedError {
  return e instanceof EgressDeniedError || (e as { code?: unknown } | null)?.code === 'EGRESS_DENIED';
}

// ───────────────────────────── addresses ─────────────────────────────

/** An address as 16 bytes (IPv4 as IPv4-mapped IPv6), so one matcher serves both families. */
type Bytes = Uint8Array;

function v4Bytes(a: string): number[] | undefined {
  const parts = a.split('.');
  if (parts.length !== 4) return undefined;
  const out = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return out.every((n) => n >= 0 && n <= 255) ? out : undefined;
}

/** Parses an IPv4 or IPv6 literal (zone ids dropped); IPv4 comes back IPv4-mapped. */
export function addressBytes(input: string): Bytes | undefined {
  let a = input.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  a = a.replace(/%.*$/, '');
  const fam = isIP(a);
  if (fam === 4) return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4Bytes(a)!]);
  if (fam !== 6) return undefined;
  let tail: number[] = [];
  let s = a;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = v4Bytes(s.slice(lastColon + 1))!;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const r = rest !== undefined ? (rest ? rest.split(':') : []) : undefined;
  const groups = r === undefined ? h : [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length) out.set(tail, 12);
  return out;
}

const zeros = (b: Bytes, from: number, to: number) => b.slice(from, to).every((x) => x === 0);

/**
 * IPv4 hidden in IPv6, checked as the IPv4 address it reaches: mapped (`::ffff:a.b.c.d`), the deprecated
 * compatible form (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`).
 */
function embeddedV4(b: Bytes): Bytes | undefined {
  const v4 = b.slice(12);
  const mapped = (x: number[]) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...x]);
  if (zeros(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return undefined; // already the IPv4 form
  if (zeros(b, 0, 12) && !zeros(b, 12, 15)) return mapped([...v4]); // ::a.b.c.d (not :: or ::1)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(b, 4, 12)) return mapped([...v4]);
  return undefined;
}

const isV4 = (b: Bytes) => zeros(b, 0, 10) && b[10] === 0xff && b[11] === 0xff;

interface Cidr {
  bytes: Bytes;
  /** Prefix length over the 16-byte form (IPv4 /n is /96+n). */
  bits: number;
}

function parseCidr(text: string): Cidr | undefined {
  const m = /^\[?([^\]/]+)\]?(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const bytes = addressBytes(m[1]);
  if (!bytes) return undefined;
  const v4 = isIP(m[1]) === 4;
  const max = v4 ? 32 : 128;
  const n = m[2] === undefined ? max : Number(m[2]);
  if (n > max) return undefined;
  return { bytes, bits: v4 ? 96 + n : n };
}

function inCidr(b: Bytes, c: Cidr): boolean {
  // Families apart: an IPv6 range (even `::/0`) never covers IPv4 addresses, which are stored IPv4-mapped here;
  // a range written in the mapped form (`::ffff:0:0/96`) is an IPv4 range.
  if (isV4(b) !== (c.bits >= 96 && isV4(c.bytes))) return false;
  const full = c.bits >> 3;
  for (let i = 0; i < full; i++) if (b[i] !== c.bytes[i]) return false;
  const rest = c.bits & 7;
  if (!rest) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[full] & mask) === (c.bytes[full] & mask);
}

const cidr = (t: string) => parseCidr(t)!;
const LOOPBACK = [cidr('127.0.0.0/8'), cidr('::1/128')];
const PRIVATE = [cidr('10.0.0.0/8'), cidr('172.16.0.0/12'), cidr('192.168.0.0/16'), cidr('100.64.0.0/10'), cidr('fc00::/7')];
const UNSPECIFIED = [cidr('0.0.0.0/8'), cidr('::/128')];

// ───────────────────────────── rules ─────────────────────────────

/**
 * One entry of EGRESS_ALLOW / EGRESS_DENY, or a built-in. `nets` empty and no `name`: any address (`*:port`).
 * `local`: any address of this host (loopback, unspecified, its interfaces), e.g. the gateway's own ports.
 */
export interface EgressRule {
  label: string;
  nets?: Cidr[];
  name?: string;
  local?: boolean;
  port?: number;
}

const KEYWORDS: Record<string, Cidr[]> = { loopback: LOOPBACK, private: PRIVATE };

/** `10.0.0.0/8`, `10.0.0.5`, `10.0.0.5:8000`, `[::1]:8000`, `[fd00::/8]:443`, `host.name[:port]`, `*.internal`, `*:5432`, `loopback`, `private`. */
export function parseEgressEntry(entry: string): EgressRule | string {
  const e = entry.trim();
  const bad = `"${e}" is not an address, CIDR range, host name, keyword (loopback, private) or *, with an optional :port`;
  let host = e;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(e.replace(/\/\d+$/, '')) !== 6) {
    const m = /^(.*):(\d+)$/.exec(e);
    if (m) {
      host = m[1];
      port = Number(m[2]);
    }
  }
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) return `${bad} (port 1–65535)`;
  const label = e;
  const lower = host.toLowerCase();
  if (lower === '*') return { label, nets: [], port };
  if (KEYWORDS[lower]) return { label, nets: KEYWORDS[lower], port };
  const c = parseCidr(host);
  if (c) return { label, nets: [c], port };
  if (/^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,62})\.)*[a-z0-9_][a-z0-9_-]{0,62}\.?$/.test(lower) && !/^[\d.]+$/.test(lower)) {
    return { label, name: lower.replace(/\.$/, ''), port };
  }
  return bad;
}

function parseList(variable: string, raw: string | undefined, problems: string[]): EgressRule[] {
  const out: EgressRule[] = [];
  for (const entry of (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const r = parseEgressEntry(entry);
    if (typeof r === 'string') problems.push(`${variable}: ${r}`);
    else out.push({ ...r, label: `${variable} ${r.label}` });
  }
  return out;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'postgres:': 5432, 'postgresql:': 5432, 'redis:': 6379, 'rediss:': 6379 };

/** Host (unbracketed, lower case) and port of a URL, the scheme's default port when none is written. */
export function hostPortOf(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    const host = u.hostname
      .replace(/^\[|\]$/g, '')
      .toLowerCase()
      .replace(/\.$/, '');
    const port = u.port ? Number(u.port) : DEFAULT_PORTS[u.protocol];
    return host && port ? { host, port } : undefined;
  } catch {
    return undefined;
  }
}

/** Local names: `localhost` and `*.localhost` (RFC 6761) reach loopback whatever DNS says. */
const isLocalhostName = (h: string) => h === 'localhost' || h.endsWith('.localhost');

/**
 * HTTP servers this process listens on (the gateway and admin apps register theirs): their ports are denied on
 * local addresses even when they differ from GATEWAY_PORT / ADMIN_PORT (port 0, tests, the all-in-one start).
 */
const ownServers = new Set<Server>();

export function registerOwnServer(server: Server): void {
  ownServers.add(server);
  server.once('close', () => ownServers.delete(server));
}

function ownListeningPorts(): number[] {
  const ports: number[] = [];
  for (const s of ownServers) {
    const a = s.listening ? s.address() : null;
    if (a && typeof a === 'object') ports.push(a.port);
  }
  return ports;
}

export interface EgressPolicyOptions {
  allow?: string;
  deny?: string;
  defaultVerdict?: 'allow' | 'deny';
  /** Ports of the gateway and admin (GATEWAY_PORT, ADMIN_PORT). */
  ownPorts?: number[];
  /** DATABASE_URL (or the embedded database's), REDIS_URL: their host:port is denied. */
  internalUrls?: { what: string; url: string | undefined }[];
  /** Addresses of this host (default: os.networkInterfaces()). */
  localAddresses?: string[];
}

/**
 * Throws a ConfigError naming EGRESS_ALLOW / EGRESS_DENY for a bad entry. The apps call it before Nest builds
 * anything: an exception inside Nest's dependency injection would end the process without the message.
 */
export function validateEgressConfig(cfg: Partial<Pick<AppConfig, 'egressAllow' | 'egressDeny'>>): void {
  new EgressPolicy({ allow: cfg.egressAllow, deny: cfg.egressDeny, localAddresses: [] });
}

export class EgressPolicy implements EgressChecker {
  private readonly denies: EgressRule[];
  private readonly allows: EgressRule[];
  private readonly defaultVerdict: 'allow' | 'deny';
  private readonly ownPorts: number[];
  private readonly local: Bytes[];
  /** Denied names (DATABASE_URL's host, EGRESS_DENY names), resolved at start to deny their addresses too. */
  readonly internalNames: { what: string; host: string; port?: number }[] = [];

  constructor(opts: EgressPolicyOptions = {}) {
    const problems: string[] = [];
    const userDeny = parseList('EGRESS_DENY', opts.deny, problems);
    this.allows = parseList('EGRESS_ALLOW', opts.allow, problems);
    if (problems.length) throw new ConfigError(problems);
    this.defaultVerdict = opts.defaultVerdict ?? 'allow';
    this.ownPorts = [...new Set((opts.ownPorts ?? []).filter((p) => p > 0))];
    this.local = (opts.localAddresses ?? interfaceAddresses()).map(addressBytes).filter((b): b is Bytes => !!b);
    const builtIn: EgressRule[] = [
      { label: 'built-in: cloud metadata (169.254.169.254)', nets: [cidr('169.254.169.254/32')] },
      { label: 'built-in: cloud metadata (fd00:ec2::254)', nets: [cidr('fd00:ec2::254/128')] },
      { label: 'built-in: cloud metadata (100.100.100.200)', nets: [cidr('100.100.100.200/32')] },
      { label: 'built-in: cloud metadata (metadata.google.internal)', name: 'metadata.google.internal' },
      { label: 'built-in: cloud metadata (metadata.goog)', name: 'metadata.goog' },
      { label: 'built-in: link-local (169.254.0.0/16, fe80::/10)', nets: [cidr('169.254.0.0/16'), cidr('fe80::/10')] },
      { label: 'built-in: unspecified (0.0.0.0/8, ::)', nets: UNSPECIFIED },
      { label: 'built-in: multicast and broadcast', nets: [cidr('224.0.0.0/4'), cidr('255.255.255.255/32'), cidr('ff00::/8')] },
    ];
    for (const port of this.ownPorts) builtIn.push({ label: `built-in: the gateway's own port ${port}`, local: true, port });
    for (const { what, url } of opts.internalUrls ?? []) {
      const hp = url ? hostPortOf(url) : undefined;
      if (!hp) continue;
      const label = `built-in: ${what} (${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port})`;
      const b = addressBytes(hp.host);
      if (b) {
        // A local address stands for every local address: 127.0.0.1:5432, localhost:5432 and [::1]:5432 are one server.
        builtIn.push(this.isLocal(b) ? { label, local: true, port: hp.port } : { label, nets: [{ bytes: b, bits: 128 }], port: hp.port });
      } else if (isLocalhostName(hp.host)) {
        builtIn.push({ label, local: true, port: hp.port });
      } else {
        builtIn.push({ label, name: hp.host, port: hp.port });
        this.internalNames.push({ what, host: hp.host, port: hp.port });
      }
    }
    this.denies = [...userDeny, ...builtIn];
    // EGRESS_DENY names (`admin:8081` in docker compose) are denied on their addresses too, as resolved at start.
    for (const r of userDeny) if (r.name && !r.name.startsWith('*.')) this.internalNames.push({ what: r.label, host: r.name, port: r.port });
  }

  /**
   * The policy of a process, with the host:port of DATABASE_URL / REDIS_URL also denied on the addresses their
   * names resolve to now (best effort, 2 s: a failure leaves the by-name rule, and the connect-time check).
   */
  static async create(
    cfg: Pick<AppConfig, 'egressAllow' | 'egressDeny' | 'egressDefault' | 'gatewayPort' | 'adminPort' | 'redisUrl'> & { databaseUrl?: string },
    resolver: EgressResolver = dnsResolver,
  ): Promise<EgressPolicy> {
    const policy = new EgressPolicy({
      allow: cfg.egressAllow,
      deny: cfg.egressDeny,
      defaultVerdict: cfg.egressDefault,
      ownPorts: [cfg.gatewayPort, cfg.adminPort],
      internalUrls: [
        { what: 'DATABASE_URL', url: cfg.databaseUrl },
        { what: 'REDIS_URL', url: cfg.redisUrl },
      ],
    });
    await Promise.all(
      policy.internalNames.map(async ({ what, host, port }) => {
        const addrs = await withTimeout(resolver(host), 2000).catch(() => []);
        const label = `${what.startsWith('EGRESS_DENY') ? what : `built-in: ${what}`} (${host}${port ? `:${port}` : ''} = `;
        for (const a of addrs) {
          const b = addressBytes(a.address);
          if (!b) continue;
          // Denying a whole local address (EGRESS_DENY=localhost) is the user's call; a local host:port stands for every local address.
          if (policy.isLocal(b) && port) policy.denies.push({ label: `${label}this host)`, local: true, port });
          else policy.denies.push({ label: `${label}${a.address})`, nets: [{ bytes: b, bits: 128 }], port });
        }
      }),
    );
    return policy;
  }

  check(host: string, port: number): EgressVerdict {
    const h = host
      .trim()
      .replace(/^\[|\]$/g, '')
      .toLowerCase()
      .replace(/\.$/, '');
    const b = addressBytes(h);
    if (b) return this.checkAddress(b, port);
    if (isLocalhostName(h)) return this.checkResolved(['127.0.0.1', '::1'], port);
    const denied = this.denies.find((r) => r.name !== undefined && nameMatches(r.name, h) && portMatches(r, port));
    if (denied) return { allowed: false, rule: denied.label };
    const allowed = this.allows.find((r) => r.name !== undefined && nameMatches(r.name, h) && portMatches(r, port));
    if (allowed) return { allowed: true, rule: allowed.label };
    // A name is judged again on what it resolves to when a connection opens; here only names are known.
    return { allowed: true, rule: 'a name: checked on its addresses at connect time' };
  }

  checkResolved(addresses: string[], port: number, name?: string): EgressVerdict {
    if (!addresses.length) return { allowed: false, rule: 'no address' };
    const byName = name ? this.check(name, port) : undefined;
    if (byName && !byName.allowed) return byName;
    const nameAllowed = !!byName && byName.rule.startsWith('EGRESS_ALLOW');
    let last: EgressVerdict = { allowed: true, rule: 'default' };
    for (const a of addresses) {
      const b = addressBytes(a);
      if (!b) return { allowed: false, rule: `not an address: ${a}` };
      last = this.checkAddress(b, port, nameAllowed);
      if (!last.allowed) return last;
    }
    return last;
  }

  private checkAddress(raw: Bytes, port: number, nameAllowed = false): EgressVerdict {
    // IPv4 hidden in IPv6 is checked in both forms: whichever a rule was written in.
    const forms = [raw, embeddedV4(raw)].filter((b): b is Bytes => !!b);
    for (const b of forms) {
      const denied = this.denies.find((r) => this.addressMatches(r, b) && portMatches(r, port));
      if (denied) return { allowed: false, rule: denied.label };
      if (this.isLocal(b) && ownListeningPorts().includes(port)) return { allowed: false, rule: `built-in: the gateway's own port ${port}` };
    }
    if (nameAllowed) return { allowed: true, rule: 'EGRESS_ALLOW (by name)' };
    for (const b of forms) {
      const allowed = this.allows.find((r) => this.addressMatches(r, b) && portMatches(r, port));
      if (allowed) return { allowed: true, rule: allowed.label };
    }
    return this.defaultVerdict === 'allow'
      ? { allowed: true, rule: 'EGRESS_DEFAULT allow' }
      : { allowed: false, rule: 'EGRESS_DEFAULT deny (not in EGRESS_ALLOW)' };
  }

  private addressMatches(r: EgressRule, b: Bytes): boolean {
    if (r.name !== undefined) return false;
    if (r.local) return this.isLocal(b);
    return r.nets!.length === 0 || r.nets!.some((c) => inCidr(b, c));
  }

  private isLocal(b: Bytes): boolean {
    return LOOPBACK.some((c) => inCidr(b, c)) || UNSPECIFIED.some((c) => inCidr(b, c)) || this.local.some((l) => l.every((x, i) => x === b[i]));
  }
}

function portMatches(r: EgressRule, port: number): boolean {
  return r.port === undefined || r.port === port;
}

function nameMatches(pattern: string, host: string): boolean {
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : pattern === host;
}

function interfaceAddresses(): string[] {
  try {
    return Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address)
      .filter((a): a is string => !!a);
  } catch {
    return [];
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    t.unref?.();
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
