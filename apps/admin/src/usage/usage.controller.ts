import { Controller, Get, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '@gw/auth';
import { UsageGroup, UsageService, usageToCsv } from '@gw/metering';
import type { Response } from 'express';
import { UsageQueryDto } from '../admin.dto';

@ApiTags('usage')
@ApiBearerAuth()
@UseGuards(AdminGuard)
@Controller('admin/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  async report(@Query() q: UsageQueryDto, @Res() res: Response): Promise<void> {
    const rows = await this.usage.report({
      tenantId: q.tenantId,
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
