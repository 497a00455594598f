import { Module } from '@nestjs/common';
import { ProvidersModule } from '@gw/providers';
import { RouteRepository } from './route.repository';
import { RouteService } from './route.service';

/** Route CRUD (admin). The gateway adds `RouteTable` and `EnvProvidersBootstrap` on top. */
@Module({
  imports: [ProvidersModule],
  providers: [RouteRepository, RouteService],
  exports: [RouteRepository, RouteService, ProvidersModule],
})
export class RoutingModule {}
