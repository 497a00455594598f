import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Errors } from '@gw/common';
import type { Request } from 'express';
import { AdminPrincipal } from './admin-principal';
import { AdminTokenService } from './admin-token.service';
import { HeaderBearerStrategy } from './header-bearer.strategy';

export type { AdminPrincipal } from './admin-principal';

/** `Authorization: Bearer <root token | gwa-… admin token>` (the header only) → the admin principal. */
@Injectable()
export class AdminStrategy extends PassportStrategy(HeaderBearerStrategy, 'admin') {
  constructor(private readonly tokens: AdminTokenService) {
    super();
  }

  async validate(_req: Request, token: string): Promise<AdminPrincipal> {
    const r = await this.tokens.resolve(token);
    if (r.ok) return r.principal;
    throw Errors.invalidKey(r.reason === 'expired' ? 'This admin token has expired.' : 'Invalid admin token.');
  }
}
