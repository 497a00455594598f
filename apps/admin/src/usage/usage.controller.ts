import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, CurrentAdmin, Roles, readScope } from '@gw/auth';
import { UsageGroup, UsageService, usageToCsv } from '@gw/metering';
import type { Response } from 'express';
import { UsageQueryDto } from '../admin.dto';

@ApiTags('usage')
@ApiBearerAuth()
@Roles('root', 'admin', 'viewer')
@Controller('admin/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @ApiOperation({ summary: "Usage from the ledger. Root: every tenant (filter with tenantId). A tenant's admin or viewer: its own tenant only." })
  @Get()
  async report(@CurrentAdmin() actor: AdminPrincipal, @Query() q: UsageQueryDto, @Res() res: Response): Promise<void> {
    // The caller's scope (its own tenant unless it is root; another tenant's id is a 404), then the filters.
    const rows = await this.usage.report(readScope(actor, q.tenantId), {
      keyId: q.keyId,
      model: q.model,
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
      groupBy: q.groupBy ? (q.groupBy.split(',') as UsageGroup[]) : [],
    });
    if (q.format === 'csv') {
      res.status(200).type('text/csv').send(usageToCsv(rows));
      return;
    }
    res.status(200).json({ object: 'list', data: rows });
  }
}
