import { Injectable, Logger } from '@nestjs/common';
import { Errors, OpenAIError, clientAddressOf } from '@gw/common';
import { KEY_PREFIX, KeyCache, Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { BlockList, isIP } from 'node:net';

/**
 * What a virtual key looks like: `sk-gw-` and base64url (24 random bytes make 32 characters; a little
 * slack either way for keys minted with another length). Anything else is refused without a lookup, so
 * random garbage never costs a database read.
 */
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[A-Za-z0-9_-]{20,100}$`);

export function looksLikeVirtualKey(token: string): boolean {
  return KEY_SHAPE.test(token);
}

/** Refused after the key was recognised (the principal is known): e.g. metered by the gateway. */
export interface KeyRefusal {
  req: Request;
  principal: Principal;
  error: OpenAIError;
}

type IpList = { ok: true; list: BlockList } | { ok: false };
const ipLists = new WeakMap<string[], IpList>();

/**
 * A BlockList of `addr` / `addr/bits` entries. The admin API validates them, but a row written before that
 * validation (or by hand) must not turn every request of the key into a 500: a list that cannot be built
 * is `ok: false`, and the caller refuses the request.
 */
export function buildIpList(cidrs: string[]): IpList {
  try {
    const list = new BlockList();
    for (const c of cidrs) {
      const [addr, bits, extra] = String(c).split('/');
      const v = isIP(addr);
      if (!v || extra !== undefined) throw new Error(`not an address or range: ${c}`);
      const type = v === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) list.addAddress(addr, type);
      else {
        if (!/^\d{1,3}$/.test(bits) || Number(bits) > (v === 4 ? 32 : 128)) throw new Error(`bad prefix length: ${c}`);
        list.addSubnet(addr, Number(bits), type);
      }
    }
    return { ok: true, list };
  } catch {
    return { ok: false };
  }
}

/**
 * A virtual key → the tenant principal, from memory (no passport on the data plane: `PreBodyAuthenticator`
 * calls this with the bearer it parsed before the body, synchronously, and the guard reuses its answer).
 */
@Injectable()
export class VirtualKeyStrategy {
  private readonly logger = new Logger('VirtualKey');
  private readonly refusalListeners: Array<(r: KeyRefusal) => void> = [];

  constructor(private readonly keys: KeyCache) {}

  /** Called for every request refused after its key was recognised (today: `ip_not_allowed`). */
  onRefused(listener: (r: KeyRefusal) => void): void {
    this.refusalListeners.push(listener);
  }

  /** The principal of `token`, or throws the OpenAI error to answer (401, 403 `ip_not_allowed`, 503 before the key set is loaded). */
  check(req: Request, token: string): Principal {
    if (!looksLikeVirtualKey(token)) throw unknownKey();
    const r = this.keys.lookup(token);
    if (!r.ok) {
      if (r.reason === 'not_ready') throw keysNotLoaded();
      if (r.reason === 'expired') throw Errors.invalidKey('This API key has expired.');
      throw unknownKey();
    }
    const p = r.principal;
    if (p.allowedIps) this.checkSource(req, p);
    return p;
  }

  private checkSource(req: Request, p: Principal): void {
    let built = ipLists.get(p.allowedIps!);
    if (!built) {
      built = buildIpList(p.allowedIps!);
      ipLists.set(p.allowedIps!, built);
      if (!built.ok) this.logger.error(`key ${p.keyPrefix} (tenant ${p.tenantName}) has an invalid allowedIps list; every request with it is refused until it is fixed`);
    }
    const ip = clientAddressOf(req);
    const v = isIP(ip);
    if (!built.ok || !v || !built.list.check(ip, v === 4 ? 'ipv4' : 'ipv6')) {
      const error = Errors.forbidden(`This API key may not be used from ${ip || 'this address'}.`, 'ip_not_allowed');
      for (const l of this.refusalListeners) {
        try {
          l({ req, principal: p, error });
        } catch (e) {
          this.logger.error(`refusal listener failed: ${(e as Error).message}`);
        }
      }
      throw error;
    }
  }
}

/** Start-up with the database unreachable: no key can be told from a wrong one yet (readiness is false too). */
function keysNotLoaded(): OpenAIError {
  return new OpenAIError(503, 'The gateway has not loaded its keys yet; retry shortly.', 'server_error', 'keys_not_loaded', null, { 'Retry-After': '1' });
}

function unknownKey(): OpenAIError {
  return Errors.invalidKey('Incorrect API key provided. You can obtain a key from your gateway administrator.');
}
