import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { Errors } from '@gw/common';
import { AdminPrincipal } from './admin-principal';
import { AdminTokenService } from './admin-token.service';

export type { AdminPrincipal } from './admin-principal';

/** `Authorization: Bearer <root token | gwa-… admin token>` → the admin principal. */
@Injectable()
export class AdminStrategy extends PassportStrategy(Strategy, 'admin') {
  constructor(private readonly tokens: AdminTokenService) {
    super();
  }

  async validate(token: string): Promise<AdminPrincipal> {
    const r = await this.tokens.resolve(token);
    if (r.ok) return r.principal;
    throw Errors.invalidKey(r.reason === 'expired' ? 'This admin token has expired.' : 'Invalid admin token.');
  }
}
