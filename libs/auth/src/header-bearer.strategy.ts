import { Strategy } from 'passport';
import type { Request } from 'express';

/** The verify callback: `done(err)` for a fault or a refusal, `done(null, user)` for a principal. */
export type BearerVerify = (req: Request, token: string, done: (err: unknown, user?: unknown) => void) => void;

/** `Bearer <token>` (scheme case-insensitive, one token, nothing after it) → the token; anything else → undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  return m?.[1];
}

/**
 * Passport strategy reading the credential from the `Authorization: Bearer` header only.
 * passport-http-bearer also takes `?access_token=` and a body field `access_token`: a query string ends
 * up in access logs, proxies' logs and browser history, and a body field would be forwarded upstream with
 * the rest of the body. The admin strategy uses this one; the gateway reads the same header with `bearerToken`
 * before the body (`PreBodyAuthenticator`), without passport.
 */
export class HeaderBearerStrategy extends Strategy {
  constructor(private readonly verify: BearerVerify) {
    super();
  }

  override authenticate(req: Request): void {
    const token = bearerToken(req.headers?.authorization);
    // No credential, or not a Bearer one: the guard turns this into 401 missing_api_key / invalid_api_key.
    if (!token) return this.fail(401);
    this.verify(req, token, (err, user) => {
      if (err) this.error(err);
      else if (user) this.success(user);
      else this.fail(401);
    });
  }
}
