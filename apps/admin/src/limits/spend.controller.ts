import { Controller, Get, Param, ParseUUIDPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles, TenantScoped } from '@gw/auth';
import { SpendService, TenantSpendReport } from '@gw/limits';
import { TenantSpendDto } from './spend.dto';

/** Root sees any tenant's spend; a tenant's own admins and viewers see only theirs. */
@ApiTags('tenants')
@ApiBearerAuth()
@TenantScoped('id')
@Roles('root', 'admin', 'viewer')
@Controller('admin/tenants')
export class SpendController {
  constructor(private readonly spend: SpendService) {}

  @Get(':id/spend')
  @ApiOperation({
    summary: "A tenant's spend against each of its budgets",
    description:
      'Settled spend for the current UTC day and calendar month, tenant-wide and per key, next to the budgets set with ' +
      'PATCH /admin/tenants/:id and PATCH /admin/tenants/:id/keys/:keyId (`limits`). Read from the ledger, so requests ' +
      'still in flight appear once they end (within LEDGER_FLUSH_MS).',
  })
  @ApiOkResponse({ type: TenantSpendDto })
  report(@Param('id', ParseUUIDPipe) id: string): Promise<TenantSpendReport> {
    return this.spend.report(id);
  }
}
