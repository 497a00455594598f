import { BlockList, isIP } from 'node:net';

/**
 * The client's address, computed once per request and used by everything that cares about it: the
 * failed-authentication limiter, a key's `allowedIps`, the audit log and the request log.
 *
 * `X-Forwarded-For` is a list any client can write to; only the entries appended by proxies we trust mean
 * anything. So with `TRUSTED_PROXIES` empty (the default) the address is the TCP peer and the header is
 * ignored. Otherwise, when the peer is a trusted proxy, the header is walked from the right (the entry the
 * nearest proxy appended) past every trusted address; the first untrusted one is the client. An entry that is
 * not an address stops the walk at the last trusted hop we know (never at something the client wrote).
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[] = []) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/');
      const v = isIP(addr);
      if (!v) throw new Error(`TRUSTED_PROXIES: not an address or range: ${c}`);
      const type = v === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
    this.size = cidrs.length;
  }

  has(ip: string): boolean {
    if (!this.size) return false;
    const v = isIP(ip);
    return !!v && this.list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`: an IPv4 client on a dual-stack socket is an IPv4 client. */
export function unmapIPv4(ip: string): string {
  return ip.length > 7 && (ip.startsWith('::ffff:') || ip.startsWith('::FFFF:')) && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** One `X-Forwarded-For` entry: spaces, `[v6]` brackets and a zone id removed; `host:port` forms are not expected. */
function cleanEntry(e: string): string {
  let s = e.trim();
  if (s.startsWith('[')) s = s.slice(1, s.indexOf(']') > 0 ? s.indexOf(']') : undefined);
  const pct = s.indexOf('%');
  if (pct > 0) s = s.slice(0, pct);
  return unmapIPv4(s);
}

/** The client address of a request with this TCP peer and `X-Forwarded-For` header(s). */
export function resolveClientAddress(peer: string | undefined, xff: string | string[] | undefined, trusted: TrustedProxies): string {
  let addr = unmapIPv4(peer ?? '');
  if (!xff || !trusted.has(addr)) return addr;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  for (let i = hops.length - 1; i >= 0 && trusted.has(addr); i--) {
    const next = cleanEntry(hops[i]);
    if (!isIP(next)) break;
    addr = next;
  }
  return addr;
}

const CLIENT_ADDRESS = Symbol('gw.clientAddress');
type Stamped = { [CLIENT_ADDRESS]?: string; socket?: { remoteAddress?: string }; headers?: Record<string, string | string[] | undefined> };

const NO_PROXIES = new TrustedProxies();

/** Computes the request's client address and remembers it on the request (the HTTP edge does this first). */
export function stampClientAddress(req: object, trusted: TrustedProxies): string {
  const r = req as Stamped;
  return (r[CLIENT_ADDRESS] = resolveClientAddress(r.socket?.remoteAddress, r.headers?.['x-forwarded-for'], trusted));
}

/** The client address stamped at the edge; the TCP peer (no header trusted) for a request that was not stamped. */
export function clientAddressOf(req: object): string {
  const r = req as Stamped;
  return r[CLIENT_ADDRESS] ?? stampClientAddress(req, NO_PROXIES);
}

/**
 * What failure counters and blocks are keyed by: an IPv4 address as is; an IPv6 address by its /64
 * (`2001:db8:1:2::/64`), because one host usually holds a whole /64 and could otherwise rotate through
 * 2^64 addresses. Anything else (an empty peer address) is its own bucket.
 */
export function addressBucket(ip: string): string {
  const a = unmapIPv4(ip);
  if (isIP(a) !== 6) return a;
  const groups = expandIPv6(a);
  if (!groups) return a;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** Eight 16-bit groups of a valid IPv6 address (`::` expanded, an embedded IPv4 tail converted). */
function expandIPv6(ip: string): number[] | undefined {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const o = last.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const parse = (part: string) => (part ? part.split(':').map((h) => parseInt(h, 16)) : []);
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = parse(s.slice(0, dbl));
    const rest = parse(s.slice(dbl + 2));
    groups = [...head, ...new Array<number>(Math.max(0, 8 - head.length - rest.length)).fill(0), ...rest];
  } else groups = parse(s);
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}
