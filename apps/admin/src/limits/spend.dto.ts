import { ApiProperty } from '@nestjs/swagger';

/** Swagger shapes of GET /admin/tenants/:id/spend (mirrors `TenantSpendReport` in @gw/limits). */
export class BudgetStatusDto {
  @ApiProperty({ nullable: true, type: Number, example: 25, description: 'The budget for this period; null = none' }) budgetUsd: number | null;
  @ApiProperty({ example: 3.4127, description: 'Settled spend in the ledger for this period' }) spentUsd: number;
  @ApiProperty({
    nullable: true,
    type: Number,
    example: 0.0123,
    description:
      'Reserved against this budget right now by requests in flight (each settles at its actual cost when it ends). Null without a ' +
      'budget, or when the limit counters cannot be seen from the admin process (in-memory counters of a gateway in another process)',
  })
  reservedUsd: number | null;
  @ApiProperty({ nullable: true, type: Number, example: 21.5873, description: 'budgetUsd - spentUsd (reservations not subtracted)' }) remainingUsd:
    number | null;
  @ApiProperty({ description: 'Spend has reached the budget: requests get 429 insufficient_quota until it resets' }) exhausted: boolean;
  @ApiProperty({ example: '2026-01-15T00:00:00.000Z' }) periodStart: string;
  @ApiProperty({ example: '2026-01-16T00:00:00.000Z', description: 'When the period (UTC day or calendar month) ends' }) resetsAt: string;
}

export class PeriodBudgetsDto {
  @ApiProperty({ type: BudgetStatusDto }) daily: BudgetStatusDto;
  @ApiProperty({ type: BudgetStatusDto }) monthly: BudgetStatusDto;
}

export class KeySpendDto extends PeriodBudgetsDto {
  @ApiProperty({ format: 'uuid' }) keyId: string;
  @ApiProperty() name: string;
  @ApiProperty() prefix: string;
  @ApiProperty() revoked: boolean;
}

export class TenantSpendDto {
  @ApiProperty({ example: 'tenant.spend' }) object: 'tenant.spend';
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty() tenantName: string;
  @ApiProperty() asOf: string;
  @ApiProperty({ type: PeriodBudgetsDto, description: 'The whole tenant (every key, including deleted ones)' }) tenant: PeriodBudgetsDto;
  @ApiProperty({ type: [KeySpendDto] }) keys: KeySpendDto[];
}
