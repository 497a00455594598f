import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDateString, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';

export class AuditQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: "Root: only this tenant's entries. Tenant admins always see only their own tenant's." })
  @IsOptional()
  @IsUUID()
  tenantId?: string;
  @ApiPropertyOptional({ example: 'key.*', description: 'Exact action (key.create) or a prefix ending in * (key.*)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  @Matches(/^[\w.-]+\*?$/, { message: 'action must be like key.create or key.*' })
  action?: string;
  @ApiPropertyOptional({ example: 'key' }) @IsOptional() @IsString() @MaxLength(100) objectType?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) objectId?: string;
  @ApiPropertyOptional({ format: 'uuid', description: 'Entries made with this admin token' }) @IsOptional() @IsUUID() actorTokenId?: string;
  @ApiPropertyOptional({ description: 'ISO time, inclusive' }) @IsOptional() @IsDateString() from?: string;
  @ApiPropertyOptional({ description: 'ISO time, exclusive' }) @IsOptional() @IsDateString() to?: string;
  @ApiPropertyOptional({ description: 'Entries older than this id (paging: pass the last id you got)' })
  @IsOptional()
  @Matches(/^\d{1,19}$/, { message: 'beforeId must be an entry id' })
  beforeId?: string;
  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 1000 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(1000) limit?: number;
}

export class AuditEntryDto {
  @ApiProperty({ example: '42', description: 'Increasing; newest first in lists' }) id: string;
  @ApiProperty({ type: String, format: 'date-time' }) at: Date;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'null = the bootstrap root token' }) actorTokenId: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'gwa-Ab3dE6gH' }) actorPrefix: string | null;
  @ApiProperty({ enum: ['root', 'admin', 'viewer'] }) actorRole: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: "The object's tenant; null for instance-wide objects" }) tenantId: string | null;
  @ApiProperty({ example: 'key.create' }) action: string;
  @ApiProperty({ example: 'key' }) objectType: string;
  @ApiProperty({ nullable: true, type: String }) objectId: string | null;
  @ApiProperty({ nullable: true, type: Object, description: 'The row as stored before the change, without secrets or hashes' }) before: Record<
    string,
    unknown
  > | null;
  @ApiProperty({ nullable: true, type: Object, description: 'The row after the change (null when deleted), without secrets or hashes' }) after: Record<
    string,
    unknown
  > | null;
  @ApiProperty({ nullable: true, type: String }) ip: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'x-request-id of the change' }) requestId: string | null;
}

export class AuditListDto {
  @ApiProperty({ enum: ['list'] }) object: 'list';
  @ApiProperty({ type: [AuditEntryDto] }) data: AuditEntryDto[];
}
