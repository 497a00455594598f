import { Injectable, Logger } from '@nestjs/common';
import { Errors, OpenAIError, clientAddressOf } from '@gw/common';
import { KEY_PREFIX, KeyCache, Principal } from '@gw/tenancy';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { bearerToken } from './header-bearer.strategy';

/**
 * What a virtual key looks like: `sk-gw-` and base64url (24 random bytes make 32 characters; a little
 * slack either way for keys minted with another length). Anything else is refused without a lookup, so
 * random garbage never costs a database read.
 */
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[A-Za-z0-9_-]{20,100}$`);

export function looksLikeVirtualKey(token: string): boolean {
  return KEY_SHAPE.test(token);
}

/**
 * What the data plane decided about a request's caller from its head alone. `guess` marks a refusal that
 * counts as a failed authentication for the address (a credential was offered and refused: 401); `principal`
 * a refusal of a key that was recognised (`ip_not_allowed`), which the gateway meters.
 */
export type AuthDecision = { ok: true; principal: Principal } | { ok: false; error: OpenAIError; guess: boolean; principal?: Principal };

/**
 * The data plane's authentication: one synchronous decision from the request head (headers and peer
 * address), with no I/O, before any byte of the body is read. The gateway's core depends on this interface
 * only, not on how keys are stored.
 */
export interface DataPlaneAuthenticator {
  authenticate(req: IncomingMessage): AuthDecision;
}

const DECISION = Symbol('gw.authDecision');
type Decided = IncomingMessage & { [DECISION]?: AuthDecision };

/** Remembers the decision on the request: the gateway's authenticate step reads it instead of authenticating again. */
export function attachAuthDecision(req: IncomingMessage, decision: AuthDecision): void {
  (req as Decided)[DECISION] = decision;
}

export function authDecisionOf(req: IncomingMessage): AuthDecision | undefined {
  return (req as Decided)[DECISION];
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
 * `Authorization: Bearer sk-gw-…` → the tenant principal, or the refusal to answer: no credential (401
 * `missing_api_key`), not a Bearer credential or not shaped like a key (401, no lookup), unknown, revoked or
 * expired (401: one sha256 and a map read in `KeyCache`, never a database read), outside the key's
 * `allowedIps` (403 `ip_not_allowed`), or the key set not loaded yet (503 `keys_not_loaded`).
 */
@Injectable()
export class PreBodyAuthenticator implements DataPlaneAuthenticator {
  private readonly logger = new Logger('VirtualKey');

  constructor(private readonly keys: KeyCache) {}

  authenticate(req: IncomingMessage): AuthDecision {
    const header = req.headers.authorization;
    const token = bearerToken(header);
    // Some other scheme (or a malformed Bearer) is a credential offered and refused; none at all is not a guess.
    if (!token) return header ? { ok: false, error: Errors.invalidKey(), guess: true } : { ok: false, error: Errors.missingKey(), guess: false };
    if (!looksLikeVirtualKey(token)) return refused(unknownKey());
    const r = this.keys.lookup(token);
    if (!r.ok) {
      if (r.reason === 'not_ready') return refused(keysNotLoaded());
      if (r.reason === 'expired') return refused(Errors.invalidKey('This API key has expired.'));
      return refused(unknownKey());
    }
    const p = r.principal;
    if (p.allowedIps && !this.fromAllowedAddress(req, p)) {
      const ip = clientAddressOf(req);
      return { ok: false, error: Errors.forbidden(`This API key may not be used from ${ip || 'this address'}.`, 'ip_not_allowed'), guess: false, principal: p };
    }
    return { ok: true, principal: p };
  }

  private fromAllowedAddress(req: IncomingMessage, p: Principal): boolean {
    let built = ipLists.get(p.allowedIps!);
    if (!built) {
      built = buildIpList(p.allowedIps!);
      ipLists.set(p.allowedIps!, built);
      if (!built.ok)
        this.logger.error(`key ${p.keyPrefix} (tenant ${p.tenantName}) has an invalid allowedIps list; every request with it is refused until it is fixed`);
    }
    const ip = clientAddressOf(req);
    const v = isIP(ip);
    return built.ok && !!v && built.list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** A refusal of the credential itself: a 401 is a guess, counted against the address. */
function refused(error: OpenAIError): AuthDecision {
  return { ok: false, error, guess: error.getStatus() === 401 };
}

/** Start-up with the database unreachable: no key can be told from a wrong one yet (readiness is false too). */
function keysNotLoaded(): OpenAIError {
  return new OpenAIError(503, 'The gateway has not loaded its keys yet; retry shortly.', 'server_error', 'keys_not_loaded', null, { 'Retry-After': '1' });
}

function unknownKey(): OpenAIError {
  return Errors.invalidKey('Incorrect API key provided. You can obtain a key from your gateway administrator.');
}
