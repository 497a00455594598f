import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { KeyCache, TenancyModule } from '@gw/tenancy';
import { AdminStrategy } from './admin.strategy';
import { AdminTokenService } from './admin-token.service';
import { VirtualKeyStrategy } from './virtual-key.strategy';

/** Data plane: tenant virtual keys, resolved from the in-memory key cache. */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [KeyCache, VirtualKeyStrategy],
  exports: [KeyCache, TenancyModule],
})
export class GatewayAuthModule {}

/** Control plane: admin bearer tokens. */
@Module({
  imports: [PassportModule],
  providers: [AdminTokenService, AdminStrategy],
  exports: [AdminTokenService],
})
export class AdminAuthModule {}
