import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { AppConfig } from './app-config';
import { usableCores } from './cpu-count';

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Small, explicit parsers: each problem names the variable, so a bad deployment says what to fix. */
class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  int(name: string, def: number, min: number, max: number): number {
    const raw = this.str(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return def;
    }
    return n;
  }

  num(name: string, def: number, min: number, max: number): number {
    const raw = this.str(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name} must be a number between ${min} and ${max} (got "${raw}")`);
      return def;
    }
    return n;
  }

  url(name: string, protocols: string[], def?: string): string | undefined {
    const raw = this.str(name) ?? def;
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error();
    } catch {
      this.problems.push(`${name} must be a URL starting with ${protocols.map((p) => p + '//').join(' or ')} (got "${raw}")`);
      return def;
    }
    return raw.replace(/\/+$/, '');
  }

  oneOf<T extends string>(name: string, values: readonly T[], def: T): T {
    const raw = this.str(name);
    if (raw === undefined) return def;
    if (!(values as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of ${values.join(', ')} (got "${raw}")`);
      return def;
    }
    return raw as T;
  }

  /** Comma- or space-separated addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`). */
  cidrs(name: string): string[] {
    const raw = this.str(name);
    if (raw === undefined) return [];
    const list = raw.split(/[\s,]+/).filter(Boolean);
    for (const c of list) {
      const [addr, bits, extra] = c.split('/');
      const v = isIP(addr);
      const max = v === 4 ? 32 : 128;
      if (!v || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
        this.problems.push(`${name} must list IP addresses or CIDR ranges such as 10.0.0.0/8 (got "${c}")`);
        return [];
      }
    }
    return list;
  }

  size(name: string, def: string): string {
    const raw = this.str(name) ?? def;
    if (!/^\d+(b|kb|mb|gb)?$/i.test(raw)) {
      this.problems.push(`${name} must be a size such as 512kb or 20mb (got "${raw}")`);
      return def;
    }
    return raw.toLowerCase();
  }
}

/** Connections per app process; several gateway workers split it when it is not set (cluster.supervisor.ts). */
export const DEFAULT_DATABASE_POOL_SIZE = 10;

export function parseConfig(env: Env = process.env): AppConfig {
  const r = new EnvReader(env);
  const masterKey = r.str('MASTER_KEY');
  if (masterKey !== undefined && decodeKey(masterKey) === undefined) {
    r.problems.push('MASTER_KEY must be 32 bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)');
  }
  const adminToken = r.str('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) {
    r.problems.push('ADMIN_TOKEN must be at least 16 characters');
  }
  // METRICS_TOKEN_FILE: a secret provisioned as a file (Compose's generated secret, a Kubernetes Secret volume).
  let metricsToken = r.str('METRICS_TOKEN');
  const metricsTokenFile = r.str('METRICS_TOKEN_FILE');
  if (metricsToken === undefined && metricsTokenFile !== undefined) {
    try {
      metricsToken = readFileSync(metricsTokenFile, 'utf8').trim() || undefined;
      if (metricsToken === undefined) r.problems.push(`METRICS_TOKEN_FILE ${metricsTokenFile} is empty`);
    } catch (e) {
      r.problems.push(`METRICS_TOKEN_FILE ${metricsTokenFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  if (metricsToken !== undefined && metricsToken.length < 16) {
    r.problems.push('METRICS_TOKEN (or the content of METRICS_TOKEN_FILE) must be at least 16 characters');
  }
  const cfg: AppConfig = {
    host: r.str('HOST') ?? '0.0.0.0',
    gatewayPort: r.int('GATEWAY_PORT', 8080, 0, 65535),
    adminPort: r.int('ADMIN_PORT', 8081, 0, 65535),
    dataDir: r.str('DATA_DIR') ?? './data',
    databaseUrl: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: r.int('DATABASE_POOL_SIZE', DEFAULT_DATABASE_POOL_SIZE, 1, 200),
    redisUrl: r.url('REDIS_URL', ['redis:', 'rediss:']),
    gatewayWorkers: 1,
    adminToken,
    metricsToken,
    masterKey,
    openaiApiKey: r.str('OPENAI_API_KEY'),
    openaiBaseUrl: r.url('OPENAI_BASE_URL', ['http:', 'https:'], 'https://api.openai.com/v1')!,
    openrouterApiKey: r.str('OPENROUTER_API_KEY'),
    openrouterBaseUrl: r.url('OPENROUTER_BASE_URL', ['http:', 'https:'], 'https://openrouter.ai/api/v1')!,
    ollamaBaseUrl: r.url('OLLAMA_BASE_URL', ['http:', 'https:']),
    logLevel: r.oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    // A person at a terminal reads lines; anything else (a pipe, a file, a container's log driver) gets JSON.
    logFormat: r.oneOf('LOG_FORMAT', ['json', 'pretty'] as const, process.stdout.isTTY ? 'pretty' : 'json'),
    bodyLimit: r.size('BODY_LIMIT', '50mb'),
    wsHistoryMaxBytes: r.int('WS_HISTORY_MAX_BYTES', 8 * 1024 * 1024, 0, 1024 * 1024 * 1024),
    wsMaxConnections: r.int('WS_MAX_CONNECTIONS', 512, 0, 1_000_000),
    wsMaxConnectionsPerKey: r.int('WS_MAX_CONNECTIONS_PER_KEY', 32, 0, 1_000_000),
    wsIdleTimeoutMs: r.int('WS_IDLE_TIMEOUT_MS', 600_000, 1_000, 86_400_000),
    cacheRefreshMs: r.int('CACHE_REFRESH_MS', 500, 50, 60_000),
    ledgerFlushMs: r.int('LEDGER_FLUSH_MS', 500, 10, 60_000),
    ledgerBatchSize: r.int('LEDGER_BATCH_SIZE', 500, 1, 10_000),
    journalDir: r.str('JOURNAL_DIR'),
    journalSegmentBytes: r.int('JOURNAL_SEGMENT_BYTES', 8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    limitsLeaseMs: r.int('LIMITS_LEASE_MS', 20_000, 1_000, 600_000),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 30_000, 0, 600_000),
    defaultMaxOutputTokens: r.int('DEFAULT_MAX_OUTPUT_TOKENS', 4096, 1, 10_000_000),
    budgetMinOutputTokens: r.int('BUDGET_MIN_OUTPUT_TOKENS', 256, 1, 10_000_000),
    defaultPricePerMInput: r.num('DEFAULT_PRICE_PER_M_INPUT', 10, 0, 1_000_000),
    defaultPricePerMOutput: r.num('DEFAULT_PRICE_PER_M_OUTPUT', 30, 0, 1_000_000),
    unknownModelPricing: r.oneOf('UNKNOWN_MODEL_PRICING', ['fallback', 'refuse'] as const, 'fallback'),
    upstreamConnectTimeoutMs: r.int('UPSTREAM_CONNECT_TIMEOUT_MS', 10_000, 1, 600_000),
    upstreamFirstByteTimeoutMs: r.int('UPSTREAM_FIRST_BYTE_TIMEOUT_MS', 60_000, 1, 3_600_000),
    // At least Codex's own `stream_idle_timeout_ms` (300 s): a reasoning model may think that long between events.
    upstreamIdleTimeoutMs: r.int('UPSTREAM_IDLE_TIMEOUT_MS', 300_000, 1, 3_600_000),
    upstreamTotalTimeoutMs: r.int('UPSTREAM_TOTAL_TIMEOUT_MS', 600_000, 1, 7_200_000),
    circuitFailureThreshold: r.int('CIRCUIT_FAILURE_THRESHOLD', 5, 0, 1000),
    circuitCooldownMs: r.int('CIRCUIT_COOLDOWN_MS', 30_000, 1, 3_600_000),
    upstreamRateLimitBackoffMs: r.int('UPSTREAM_RATE_LIMIT_BACKOFF_MS', 1_000, 0, 3_600_000),
    upstreamMaxBackoffMs: r.int('UPSTREAM_MAX_BACKOFF_MS', 60_000, 1_000, 3_600_000),
    upstreamQuotaBackoffMs: r.int('UPSTREAM_QUOTA_BACKOFF_MS', 60_000, 0, 3_600_000),
    trustedProxies: r.cidrs('TRUSTED_PROXIES'),
    authRedisNamespace: r.str('AUTH_REDIS_NAMESPACE') ?? '',
    // Entries are parsed (and refused, naming the variable) by the egress policy (@gw/providers) at start.
    egressAllow: r.str('EGRESS_ALLOW'),
    egressDeny: r.str('EGRESS_DENY'),
    egressDefault: r.oneOf('EGRESS_DEFAULT', ['allow', 'deny'] as const, 'allow'),
    headersTimeoutMs: r.int('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    maxHeaderBytes: r.int('MAX_HEADER_BYTES', 16_384, 1_024, 1_048_576),
    keepAliveTimeoutMs: r.int('KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
    bodyMinBytesPerSecond: r.int('BODY_MIN_RATE_BYTES_PER_S', 8_192, 0, 1_000_000_000),
    bodyRateWindowMs: r.int('BODY_RATE_WINDOW_MS', 10_000, 100, 600_000),
    maxConnectionsPerAddress: r.int('MAX_CONNECTIONS_PER_ADDRESS', 256, 0, 1_000_000),
  };
  cfg.gatewayWorkers = gatewayWorkers(r, cfg.redisUrl !== undefined, cfg.databaseUrl !== undefined);
  if (r.problems.length) throw new ConfigError(r.problems);
  return cfg;
}

/**
 * GATEWAY_WORKERS: event loops (node:cluster workers) of one gateway process. Unset: every usable core when
 * the limits live in Redis and the database is DATABASE_URL, else 1. More than one without Redis is refused: each
 * worker would keep its own counters, so every limit would be multiplied by the number of workers. More than one
 * without DATABASE_URL too: the embedded PGlite is one process's child, served to that process alone.
 */
function gatewayWorkers(r: EnvReader, hasRedis: boolean, hasDatabaseUrl: boolean): number {
  const raw = r.str('GATEWAY_WORKERS');
  if (raw === undefined) return hasRedis && hasDatabaseUrl ? usableCores() : 1;
  const n = r.int('GATEWAY_WORKERS', 1, 1, 1024);
  if (n > 1 && hasRedis && !hasDatabaseUrl) {
    r.problems.push(
      `GATEWAY_WORKERS=${n} needs DATABASE_URL: the embedded PGlite (no DATABASE_URL) is one process's own database; set DATABASE_URL or GATEWAY_WORKERS=1`,
    );
    return 1;
  }
  if (n > 1 && !hasRedis) {
    r.problems.push(
      `GATEWAY_WORKERS=${n} needs REDIS_URL: rate limits, concurrency and budgets must be shared by the workers' event loops (without Redis each worker would enforce its own copy); set REDIS_URL or GATEWAY_WORKERS=1`,
    );
    return 1;
  }
  return n;
}

/** Accepts 32 raw bytes as base64 (44 chars) or hex (64 chars). */
export function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-f]{64}$/i.test(text)) return Buffer.from(text, 'hex');
  const b = Buffer.from(text, 'base64');
  return b.length === 32 ? b : undefined;
}
