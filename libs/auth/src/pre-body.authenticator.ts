import { Injectable } from '@nestjs/common';
import { Errors, OpenAIError } from '@gw/common';
import type { Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { bearerToken } from './header-bearer.strategy';
import { VirtualKeyStrategy } from './virtual-key.strategy';

/**
 * What the data plane decided about a request's caller from its head alone. `guess` marks a refusal that
 * counts as a failed authentication for the address (a credential was offered and refused: 401).
 */
export type AuthDecision = { ok: true; principal: Principal } | { ok: false; error: OpenAIError; guess: boolean };

/**
 * The data plane's authentication: one synchronous decision from the request head (headers and peer
 * address), with no I/O, before any byte of the body is read. The gateway's core depends on this interface
 * only, not on how keys are stored.
 */
export interface DataPlaneAuthenticator {
  authenticate(req: Request): AuthDecision;
}

const DECISION = Symbol('gw.authDecision');
type Decided = Request & { [DECISION]?: AuthDecision };

/** Remembers the decision on the request: the guard later reads it instead of authenticating again. */
export function attachAuthDecision(req: Request, decision: AuthDecision): void {
  (req as Decided)[DECISION] = decision;
}

export function authDecisionOf(req: Request): AuthDecision | undefined {
  return (req as Decided)[DECISION];
}

/**
 * `Authorization: Bearer sk-gw-…` → the tenant principal, or the refusal to answer: no credential (401
 * `missing_api_key`), not a Bearer credential or not shaped like a key (401, no lookup), unknown, revoked or
 * expired (401: one sha256 and a map read in `KeyCache`, never a database read), outside the key's
 * `allowedIps` (403 `ip_not_allowed`), or the key set not loaded yet (503 `keys_not_loaded`).
 */
@Injectable()
export class PreBodyAuthenticator implements DataPlaneAuthenticator {
  constructor(private readonly keys: VirtualKeyStrategy) {}

  authenticate(req: Request): AuthDecision {
    const header = req.headers.authorization;
    const token = bearerToken(header);
    // Some other scheme (or a malformed Bearer) is a credential offered and refused; none at all is not a guess.
    if (!token) return header ? { ok: false, error: Errors.invalidKey(), guess: true } : { ok: false, error: Errors.missingKey(), guess: false };
    try {
      return { ok: true, principal: this.keys.check(req, token) };
    } catch (e) {
      if (!(e instanceof OpenAIError)) throw e;
      return { ok: false, error: e, guess: e.getStatus() === 401 };
    }
  }
}
