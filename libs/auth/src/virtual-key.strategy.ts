import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { Errors } from '@gw/common';
import { KeyCache, Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { BlockList, isIPv4 } from 'node:net';

const ipLists = new WeakMap<string[], BlockList>();

function blockListFor(cidrs: string[]): BlockList {
  let bl = ipLists.get(cidrs);
  if (!bl) {
    bl = new BlockList();
    for (const c of cidrs) {
      const [addr, bits] = c.split('/');
      const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) bl.addAddress(addr, type);
      else bl.addSubnet(addr, Number(bits), type);
    }
    ipLists.set(cidrs, bl);
  }
  return bl;
}

/** `Authorization: Bearer sk-gw-…` → the tenant principal, from memory. */
@Injectable()
export class VirtualKeyStrategy extends PassportStrategy(Strategy, 'virtual-key') {
  constructor(private readonly keys: KeyCache) {
    super({ passReqToCallback: true });
  }

  async validate(req: Request, token: string): Promise<Principal> {
    const r = await this.keys.lookup(token);
    if (!r.ok) {
      if (r.reason === 'expired') throw Errors.invalidKey('This API key has expired.');
      throw Errors.invalidKey('Incorrect API key provided. You can obtain a key from your gateway administrator.');
    }
    const p = r.principal;
    if (p.allowedIps) {
      let ip = req.socket.remoteAddress ?? '';
      if (ip.startsWith('::ffff:')) ip = ip.slice(7);
      if (!blockListFor(p.allowedIps).check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6')) {
        throw Errors.forbidden(`This API key may not be used from ${ip}.`, 'ip_not_allowed');
      }
    }
    return p;
  }
}
