import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDateString, IsIn, IsOptional, IsString, IsUUID, MaxLength, MinLength } from 'class-validator';
import { ADMIN_ROLES, AdminRole } from '@gw/db';

/** Root: any role. `root` tokens have no tenant; `admin` and `viewer` tokens need one. */
export class CreateAdminTokenDto {
  @ApiProperty({ example: 'team-a admin (alice)' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiProperty({
    enum: ADMIN_ROLES,
    description: 'root: everything; admin: one tenant (keys, key limits, tokens, usage, audit, routes if allowed); viewer: one tenant, read-only (usage, keys)',
  })
  @IsIn(ADMIN_ROLES as string[])
  role: AdminRole;
  @ApiPropertyOptional({ format: 'uuid', nullable: true, description: 'Required for admin and viewer; must be absent for root' })
  @IsOptional()
  @IsUUID()
  tenantId?: string | null;
  @ApiPropertyOptional({ example: '2027-01-01T00:00:00Z', nullable: true, description: 'Omitted = never expires' }) @IsOptional() @IsDateString() expiresAt?:
    string | null;
}

/** Root or the tenant's own admin: admin or viewer tokens for this tenant. */
export class CreateTenantTokenDto {
  @ApiProperty({ example: 'ci-usage-reader' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiProperty({ enum: ['admin', 'viewer'] }) @IsIn(['admin', 'viewer']) role: 'admin' | 'viewer';
  @ApiPropertyOptional({ example: '2027-01-01T00:00:00Z', nullable: true, description: 'Omitted = never expires' }) @IsOptional() @IsDateString() expiresAt?:
    string | null;
}

export class AdminTokenQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: "Only this tenant's tokens; omitted = every token, root tokens included" })
  @IsOptional()
  @IsUUID()
  tenantId?: string;
}

export class AdminTokenDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) tenantId: string | null;
  @ApiProperty({ enum: ADMIN_ROLES }) role: AdminRole;
  @ApiProperty() name: string;
  @ApiProperty({ example: 'gwa-Ab3dE6gH', description: 'First characters of the secret, to tell tokens apart' }) prefix: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) expiresAt: Date | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) revokedAt: Date | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'Minute precision' }) lastUsedAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'Token id of the creator; null = the bootstrap root token' }) createdBy:
    string | null;
}

export class CreatedAdminTokenDto extends AdminTokenDto {
  @ApiProperty({ example: 'gwa-…', description: 'The token. Shown this once; only its sha256 is stored.' }) secret: string;
}
