import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AuditService, CurrentAdmin, Roles } from '@gw/auth';
import { AuditListDto, AuditQueryDto } from './audit.dto';

@ApiTags('audit')
@ApiBearerAuth()
@Roles('root', 'admin')
@Controller('admin/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @ApiOperation({ summary: 'Admin changes, newest first. Root sees every tenant; a tenant admin only entries about its own tenant.' })
  @ApiOkResponse({ type: AuditListDto })
  @Get()
  async list(@CurrentAdmin() actor: AdminPrincipal, @Query() q: AuditQueryDto) {
    const data = await this.audit.list(actor, {
      tenantId: q.tenantId,
      action: q.action,
      objectType: q.objectType,
      objectId: q.objectId,
      actorTokenId: q.actorTokenId,
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
      beforeId: q.beforeId,
      limit: q.limit ?? 100,
    });
    return { object: 'list', data };
  }
}
