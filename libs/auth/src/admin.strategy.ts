import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { Errors } from '@gw/common';
import { AdminTokenService } from './admin-token.service';

export interface AdminPrincipal {
  role: 'root';
}

@Injectable()
export class AdminStrategy extends PassportStrategy(Strategy, 'admin') {
  constructor(private readonly tokens: AdminTokenService) {
    super();
  }

  validate(token: string): AdminPrincipal {
    if (this.tokens.isRoot(token)) return { role: 'root' };
    throw Errors.invalidKey('Invalid admin token.');
  }
}
