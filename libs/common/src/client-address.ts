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
  /** IPv4 ranges as [network, mask] (unsigned 32-bit): checked in JS, a few ns, on every request behind a proxy. */
  private readonly v4: [number, number][] = [];
  private readonly v6 = new BlockList();
  private hasV6 = false;
  readonly size: number;

  constructor(cidrs: readonly string[] = []) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/');
      const v = isIP(addr);
      if (!v) throw new Error(`TRUSTED_PROXIES: not an address or range: ${c}`);
      if (v === 4) {
        const len = bits === undefined ? 32 : Number(bits);
        const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
        this.v4.push([(ipv4ToInt(addr)! & mask) >>> 0, mask]);
      } else {
        this.hasV6 = true;
        if (bits === undefined) this.v6.addAddress(addr, 'ipv6');
        else this.v6.addSubnet(addr, Number(bits), 'ipv6');
      }
    }
    this.size = cidrs.length;
  }

  has(ip: string): boolean {
    if (!this.size) return false;
    const n = ipv4ToInt(ip);
    if (n !== undefined) {
      for (const [net, mask] of this.v4) if ((n & mask) >>> 0 === net) return true;
      return false;
    }
    return this.hasV6 && isIP(ip) === 6 && this.v6.check(ip, 'ipv6');
  }
}

/** Dotted-quad IPv4 → unsigned 32-bit integer; undefined for anything else. */
function ipv4ToInt(ip: string): number | undefined {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (!digits || ++dots > 3) return undefined;
      n = n * 256 + part;
      part = digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
      if (part > 255) return undefined;
    } else return undefined;
  }
  return dots === 3 && digits ? n * 256 + part : undefined;
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
interface Stamped {
  [CLIENT_ADDRESS]?: string;
  socket?: { remoteAddress?: string };
  headers?: Record<string, string | string[] | undefined>;
}

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
  if (!a.includes(':')) return a;
  const groups = expandIPv6(a);
  if (!groups) return a;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** Eight 16-bit groups of a valid IPv6 address (`::` expanded, an embedded IPv4 tail converted); undefined if it is not one. */
function expandIPv6(ip: string): number[] | undefined {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const head: number[] = [];
  const rest: number[] = [];
  let out = head;
  let gap = false;
  let i = 0;
  if (s.startsWith('::')) {
    gap = true;
    out = rest;
    i = 2;
  }
  while (i < s.length) {
    let j = i;
    let g = 0;
    while (j < s.length && j - i < 5) {
      const c = s.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      g = g * 16 + d;
      j++;
    }
    if (j < s.length && s.charCodeAt(j) === 46) {
      // Embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4): the last 32 bits.
      const v4 = s.slice(i).split('.').map(Number);
      if (v4.length !== 4 || v4.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
      out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      break;
    }
    if (j === i || j - i > 4) return undefined;
    out.push(g);
    if (j === s.length) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    if (s.charCodeAt(j + 1) === 58) {
      if (gap) return undefined;
      gap = true;
      out = rest;
      j++;
      if (j + 1 === s.length) break;
    }
    i = j + 1;
  }
  const fill = 8 - head.length - rest.length;
  if (gap ? fill < 1 : fill !== 0) return undefined;
  return gap ? [...head, ...new Array<number>(fill).fill(0), ...rest] : head;
}
