import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, AppConfigModule } from '@gw/config';
import { DatabaseModule } from '@gw/db';
import { AdminAuthModule } from '@gw/auth';
import { MeteringModule } from '@gw/metering';
import { AdminObservabilityModule } from '@gw/observability';
import { RoutingModule } from '@gw/routing';
import { TenancyModule } from '@gw/tenancy';
import { AdminHealthController } from './health/health.controller';
import { KeysController } from './keys/keys.controller';
import { PricesController } from './prices/prices.controller';
import { ProvidersController } from './providers/providers.controller';
import { RoutesController } from './routes/routes.controller';
import { TenantsController } from './tenants/tenants.controller';
import { UsageController } from './usage/usage.controller';

@Module({})
export class AdminModule {
  static forRoot(overrides?: Partial<AppConfig>): DynamicModule {
    return {
      module: AdminModule,
      imports: [AppConfigModule.forRoot(overrides), DatabaseModule, AdminObservabilityModule.forRoot(), AdminAuthModule, TenancyModule, RoutingModule, MeteringModule],
      controllers: [TenantsController, KeysController, ProvidersController, RoutesController, PricesController, UsageController, AdminHealthController],
    };
  }
}
