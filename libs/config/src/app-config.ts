/**
 * The whole runtime configuration, parsed once from the environment.
 * Every field is validated at start: a bad value stops the process with a message naming the variable.
 */
export interface AppConfig {
  host: string;
  gatewayPort: number;
  adminPort: number;
  dataDir: string;
  /** Undefined means: embedded PGlite in `${dataDir}/pg`. */
  databaseUrl?: string;
  databasePoolSize: number;
  /** Undefined means: limits live in process memory. */
  redisUrl?: string;
  adminToken?: string;
  /** When set, `GET /metrics` (gateway and admin) needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** 32-byte key (base64 or hex) that encrypts provider credentials; generated into dataDir when unset. */
  masterKey?: string;
  openaiApiKey?: string;
  openaiBaseUrl: string;
  openrouterApiKey?: string;
  openrouterBaseUrl: string;
  ollamaBaseUrl?: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  bodyLimit: string;
  /** How often gateways look for admin changes made by other processes. */
  cacheRefreshMs: number;
  ledgerFlushMs: number;
  ledgerBatchSize: number;
  /**
   * Where the usage journal lives (one directory per gateway process): every ledger row, and every request
   * sent upstream, is appended there before the response ends, so a killed process loses none. Undefined
   * means `${dataDir}/journal`.
   */
  journalDir?: string;
  /** A journal segment is closed (and deleted once its rows are in Postgres) past this size. */
  journalSegmentBytes: number;
  /**
   * How long a Redis concurrency slot or budget reservation lives without its process renewing it (a live
   * process renews all of its own every third of this): a killed replica's hold ends within it.
   */
  limitsLeaseMs: number;
  shutdownGraceMs: number;
  /** Default reservation for output tokens when a request names no max. */
  defaultMaxOutputTokens: number;
  /**
   * USD per 1M input / output tokens charged for a model with no price, to keys and tenants that have a
   * budget (so an unpriced model cannot bypass it). Principals without a budget are charged 0 for it.
   */
  defaultPricePerMInput: number;
  defaultPricePerMOutput: number;
  upstreamConnectTimeoutMs: number;
  upstreamFirstByteTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  upstreamTotalTimeoutMs: number;
  /** Consecutive upstream failures that open a target's circuit; 0 disables circuit breaking. */
  circuitFailureThreshold: number;
  /** How long an open circuit sends traffic elsewhere before it lets one probe through. */
  circuitCooldownMs: number;
}
