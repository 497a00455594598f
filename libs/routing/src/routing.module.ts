import { Module } from '@nestjs/common';
import { ProvidersGatewayModule, ProvidersModule } from '@gw/providers';
import { EnvProvidersBootstrap } from './env-providers.bootstrap';
import { RouteRepository } from './route.repository';
import { RouteService } from './route.service';
import { RouteTable } from './route.table';

/** Route CRUD (with the provider CRUD it checks targets against), for the admin API and the gateway's bootstrap. */
@Module({
  imports: [ProvidersModule],
  providers: [RouteRepository, RouteService],
  exports: [RouteRepository, RouteService, ProvidersModule],
})
export class RoutingModule {}

/**
 * Data plane: every route in memory (`RouteTable`, over `ProviderCache`), and the providers and default routes
 * registered from the environment at start (`EnvProvidersBootstrap`).
 */
@Module({
  imports: [RoutingModule, ProvidersGatewayModule],
  providers: [RouteTable, EnvProvidersBootstrap],
  exports: [RouteTable, RoutingModule, ProvidersGatewayModule],
})
export class RoutingGatewayModule {}
