import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsDateString,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateBy,
  ValidateNested,
  ValidationOptions,
} from 'class-validator';
import { isIP } from 'node:net';
import { PROVIDER_KINDS, ProviderKind } from '@gw/db';
import { USAGE_GROUPS } from '@gw/metering';

/** Rate limits and budgets; absent or null = unlimited. On a tenant they bind all its keys together; on a key they apply as well (docs/limits.md). */
export class LimitsDto {
  @ApiPropertyOptional({
    type: 'integer',
    nullable: true,
    example: 600,
    description: 'Requests per minute (sliding 60 s window). Absent or null = unlimited; 0 refuses every request',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  requestsPerMinute?: number | null;
  @ApiPropertyOptional({
    type: 'integer',
    nullable: true,
    example: 200000,
    description:
      'Tokens per minute. A request reserves prompt bytes / 4 + max_tokens (or DEFAULT_MAX_OUTPUT_TOKENS) when admitted; the reservation is corrected to the actual usage when it ends',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  tokensPerMinute?: number | null;
  @ApiPropertyOptional({ type: 'integer', nullable: true, example: 16, description: 'Requests in flight at once; a stream holds its slot until it ends' })
  @IsOptional()
  @IsInt()
  @Min(0)
  concurrentRequests?: number | null;
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    example: 25,
    description:
      'USD per UTC day. Each request reserves its worst-case cost first. While reservations of requests in flight are in the way a request gets a retryable ' +
      '429 rate_limit_exceeded; once settled spend leaves less than its useful minimum, 429 insufficient_quota until midnight UTC (docs/limits.md)',
  })
  @IsOptional()
  @IsNumber()
  @Min(0)
  dailyBudgetUsd?: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true, example: 500, description: 'USD per UTC calendar month, enforced like dailyBudgetUsd' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  monthlyBudgetUsd?: number | null;
  @ApiPropertyOptional({
    enum: ['fallback', 'refuse'],
    nullable: true,
    example: 'refuse',
    description:
      'A model without any price (no override, supplement or catalog entry): refuse = 403 model_not_priced before anything is forwarded, fallback = charged DEFAULT_PRICE_PER_M_*. On a tenant it replaces UNKNOWN_MODEL_PRICING; on a key only refuse has an effect (a key can tighten, not loosen). Absent or null = the gateway setting',
  })
  @IsOptional()
  @IsIn(['fallback', 'refuse'])
  unknownModelPricing?: 'fallback' | 'refuse' | null;
}

/** `addr` or `addr/bits`: a real IPv4 or IPv6 address, and a prefix length the family allows (≤ 32, ≤ 128). */
export function isIpOrCidr(value: unknown): boolean {
  if (typeof value !== 'string' || value.length > 64) return false;
  const [addr, bits, extra] = value.split('/');
  const family = isIP(addr);
  if (!family || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

function IsIpOrCidr(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isIpOrCidr',
      validator: { validate: isIpOrCidr, defaultMessage: () => 'allowedIps must be IP addresses or CIDR ranges (10.0.0.0/8, 2001:db8::/32)' },
    },
    options,
  );
}

const ALLOWED_IPS_DOC: ApiPropertyOptions = {
  type: [String],
  nullable: true,
  example: ['10.0.0.0/8', '192.168.1.7'],
  description: 'Source addresses or CIDR ranges (IPv4 or IPv6, at most 100); omitted = anywhere',
};

export class CreateTenantDto {
  @ApiProperty({ example: 'team-a' })
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  @Matches(/^[\w.-]+$/, { message: 'name may use letters, digits, _ . and - only' })
  name: string;
  @ApiPropertyOptional({ type: LimitsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => LimitsDto) limits?: LimitsDto;
  @ApiPropertyOptional({ default: false, description: "Root only: the tenant's own admins may manage routes scoped to the tenant" })
  @IsOptional()
  @IsBoolean()
  allowTenantRoutes?: boolean;
}

export class UpdateTenantDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  @Matches(/^[\w.-]+$/, { message: 'name may use letters, digits, _ . and - only' })
  name?: string;
  @ApiPropertyOptional({ type: LimitsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => LimitsDto) limits?: LimitsDto;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
  @ApiPropertyOptional({ default: false, description: "Root only: the tenant's own admins may manage routes scoped to the tenant" })
  @IsOptional()
  @IsBoolean()
  allowTenantRoutes?: boolean;
}

export class CreateKeyDto {
  @ApiProperty({ example: 'alice-laptop' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiPropertyOptional({
    type: [String],
    nullable: true,
    example: ['gpt-4o-mini', 'gpt-oss*'],
    description: 'Model names or globs; omitted or null = all routed models',
  })
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  allowedModels?: string[] | null;
  @ApiPropertyOptional(ALLOWED_IPS_DOC)
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsIpOrCidr({ each: true })
  allowedIps?: string[] | null;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, example: '2027-01-01T00:00:00Z' }) @IsOptional() @IsDateString() expiresAt?:
    string | null;
  @ApiPropertyOptional({ type: LimitsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => LimitsDto) limits?: LimitsDto;
}

export class UpdateKeyDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(100) name?: string;
  @ApiPropertyOptional({ type: [String], nullable: true }) @IsOptional() @IsArray() @IsString({ each: true }) allowedModels?: string[] | null;
  @ApiPropertyOptional(ALLOWED_IPS_DOC) @IsOptional() @IsArray() @ArrayMaxSize(100) @IsIpOrCidr({ each: true }) allowedIps?: string[] | null;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true }) @IsOptional() @IsDateString() expiresAt?: string | null;
  @ApiPropertyOptional({ type: LimitsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => LimitsDto) limits?: LimitsDto;
}

export class ProviderSettingsDto {
  @ApiPropertyOptional({ description: 'Pass /v1/responses through natively (default: true for openai, false otherwise)' })
  @IsOptional()
  @IsBoolean()
  responsesApi?: boolean;
  @ApiPropertyOptional({ example: { sort: 'price' }, description: 'OpenRouter provider preferences' }) @IsOptional() @IsObject() providerPreferences?: Record<
    string,
    unknown
  >;
  @ApiPropertyOptional({ example: { 'X-Title': 'My team' } }) @IsOptional() @IsObject() headers?: Record<string, string>;
  @ApiPropertyOptional({ type: [String] }) @IsOptional() @IsArray() @IsString({ each: true }) models?: string[];
}

export class CreateProviderDto {
  @ApiProperty({ example: 'openai' })
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  @Matches(/^[\w.-]+$/, { message: 'name may use letters, digits, _ . and - only' })
  name: string;
  @ApiProperty({ enum: PROVIDER_KINDS }) @IsIn(PROVIDER_KINDS as string[]) kind: ProviderKind;
  @ApiPropertyOptional({ example: 'https://api.openai.com/v1' })
  @IsOptional()
  @Matches(/^https?:\/\/\S+$/, { message: 'baseUrl must be an http(s) URL' })
  baseUrl?: string;
  @ApiPropertyOptional({ type: String, nullable: true, writeOnly: true, description: 'API key; write-only, stored encrypted, never returned' })
  @IsOptional()
  @IsString()
  credential?: string | null;
  @ApiPropertyOptional({ type: ProviderSettingsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ProviderSettingsDto)
  settings?: ProviderSettingsDto;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class UpdateProviderDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MinLength(1)
  @Matches(/^[\w.-]+$/, { message: 'name may use letters, digits, _ . and - only' })
  name?: string;
  @ApiPropertyOptional({ enum: PROVIDER_KINDS }) @IsOptional() @IsIn(PROVIDER_KINDS as string[]) kind?: ProviderKind;
  @ApiPropertyOptional() @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'baseUrl must be an http(s) URL' }) baseUrl?: string;
  @ApiPropertyOptional({ type: String, nullable: true, writeOnly: true }) @IsOptional() @IsString() credential?: string | null;
  @ApiPropertyOptional({ type: ProviderSettingsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ProviderSettingsDto)
  settings?: ProviderSettingsDto;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class RouteTargetDto {
  @ApiProperty({ format: 'uuid' }) @IsUUID() providerId: string;
  @ApiPropertyOptional({ type: String, nullable: true, description: 'Upstream model id; omitted = the requested name', example: 'gpt-4o-mini' })
  @IsOptional()
  @IsString()
  model?: string | null;
  @ApiPropertyOptional({ default: 1 }) @IsOptional() @IsNumber() @Min(0) weight?: number;
  @ApiPropertyOptional({ description: 'Lower first; higher priorities are fallbacks. Default: position in the list' })
  @IsOptional()
  @IsInt()
  @Min(0)
  priority?: number;
}

/** Bounds keep every value usable: Node timers overflow past 2^31-1 ms, and retries multiply upstream load. */
export class RouteSettingsDto {
  @ApiPropertyOptional({ default: 2, minimum: 1, maximum: 10, description: 'Attempts per target' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10)
  maxAttempts?: number;
  @ApiPropertyOptional({ default: 250, minimum: 0, maximum: 60000, description: 'Base delay before a retry, in ms (with jitter)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(60_000)
  backoffMs?: number;
  @ApiPropertyOptional({ example: { sort: 'price' } }) @IsOptional() @IsObject() providerPreferences?: Record<string, unknown>;
  @ApiPropertyOptional({ minimum: 1, maximum: 3600000, description: 'Connecting to the provider, in ms (default UPSTREAM_CONNECT_TIMEOUT_MS)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  connectTimeoutMs?: number;
  @ApiPropertyOptional({ minimum: 1, maximum: 3600000, description: 'Waiting for the response head, in ms (default UPSTREAM_FIRST_BYTE_TIMEOUT_MS)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  firstByteTimeoutMs?: number;
  @ApiPropertyOptional({ minimum: 1, maximum: 3600000, description: 'Silence between stream chunks, in ms (default UPSTREAM_IDLE_TIMEOUT_MS)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  idleTimeoutMs?: number;
  @ApiPropertyOptional({ minimum: 1, maximum: 3600000, description: 'The whole request, streaming included, in ms (default UPSTREAM_TOTAL_TIMEOUT_MS)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  totalTimeoutMs?: number;
}

export class CreateRouteDto {
  @ApiProperty({ example: 'gpt-4o-mini', description: 'Public model name, alias or glob (gpt-oss*, */*)' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  modelPattern: string;
  @ApiPropertyOptional({ type: String, format: 'uuid', nullable: true, description: 'Scope the route to one tenant (overrides global routes)' })
  @IsOptional()
  @IsUUID()
  tenantId?: string | null;
  @ApiProperty({ type: [RouteTargetDto] })
  @IsArray()
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => RouteTargetDto)
  targets: RouteTargetDto[];
  @ApiPropertyOptional({ type: RouteSettingsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => RouteSettingsDto) settings?: RouteSettingsDto;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class UpdateRouteDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) modelPattern?: string;
  @ApiPropertyOptional({ type: [RouteTargetDto] })
  @IsOptional()
  @IsArray()
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => RouteTargetDto)
  targets?: RouteTargetDto[];
  @ApiPropertyOptional({ type: RouteSettingsDto }) @IsOptional() @IsObject() @ValidateNested() @Type(() => RouteSettingsDto) settings?: RouteSettingsDto;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class CreatePriceDto {
  @ApiProperty({ example: 'gpt-4o-mini*' }) @IsString() @MinLength(1) modelPattern: string;
  @ApiProperty({ example: 0.15, description: 'USD per 1M input tokens' }) @IsNumber() @Min(0) inputPerM: number;
  @ApiProperty({ example: 0.6, description: 'USD per 1M output tokens' }) @IsNumber() @Min(0) outputPerM: number;
  @ApiPropertyOptional({ type: Number, example: 0.075, nullable: true, description: 'USD per 1M cached input tokens' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  cachedInputPerM?: number | null;
}

export class UpdatePriceDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) modelPattern?: string;
  @ApiPropertyOptional() @IsOptional() @IsNumber() @Min(0) inputPerM?: number;
  @ApiPropertyOptional() @IsOptional() @IsNumber() @Min(0) outputPerM?: number;
  @ApiPropertyOptional({ type: Number, nullable: true }) @IsOptional() @IsNumber() @Min(0) cachedInputPerM?: number | null;
}

export class UsageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() tenantId?: string;
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() keyId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() model?: string;
  @ApiPropertyOptional({ description: 'ISO time, inclusive' }) @IsOptional() @IsDateString() from?: string;
  @ApiPropertyOptional({ description: 'ISO time, exclusive' }) @IsOptional() @IsDateString() to?: string;
  @ApiPropertyOptional({ description: `Comma-separated: ${USAGE_GROUPS.join(', ')}`, example: 'day,model' })
  @IsOptional()
  @Matches(new RegExp(`^(${USAGE_GROUPS.join('|')})(,(${USAGE_GROUPS.join('|')}))*$`), {
    message: `groupBy must be a comma-separated list of ${USAGE_GROUPS.join(', ')}`,
  })
  groupBy?: string;
  @ApiPropertyOptional({ enum: ['json', 'csv'] }) @IsOptional() @IsIn(['json', 'csv']) format?: 'json' | 'csv';
}
