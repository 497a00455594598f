import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { GatewayAdminGuard } from '@gw/auth';
import { Errors } from '@gw/common';
import type { Request } from 'express';
import { CircuitBreaker, CircuitSnapshot } from '../proxy/circuit-breaker';
import { BackoffSnapshot, TargetBackoff } from '../proxy/target.backoff';

/**
 * `GET /admin/circuits` on the gateway port, with a root admin token. Breaker state lives in each gateway
 * process (it is what that process routes by), not in the database, so it is served where it lives:
 * with several replicas, ask each one (the same state is in `gateway_circuit_state` on /metrics).
 * Failed root-token guesses here spend the gateway's failure budget (`GatewayAdminGuard`).
 * Lists every target that has failed at least once since start; a target not listed is closed.
 */
@Controller('admin/circuits')
@UseGuards(GatewayAdminGuard)
export class CircuitsController {
  constructor(
    private readonly breaker: CircuitBreaker,
    private readonly backoff: TargetBackoff,
  ) {}

  @Get()
  list(@Req() req: Request): { object: 'list'; failureThreshold: number; cooldownMs: number; data: CircuitSnapshot[]; backoffs: BackoffSnapshot[] } {
    // Breakers are shared by every tenant: only the root role sees them.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- tsc needs it: Express.User declares no role
    if ((req.user as { role?: string } | undefined)?.role !== 'root') throw Errors.forbidden('Circuit state needs the root admin role.');
    const { failureThreshold, cooldownMs } = this.breaker.options;
    // Backoffs (upstream 429, empty provider account) as this replica knows them: with Redis, every replica's.
    return { object: 'list', failureThreshold, cooldownMs, data: this.breaker.snapshot(), backoffs: this.backoff.snapshot() };
  }
}
