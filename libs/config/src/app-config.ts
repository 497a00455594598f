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
  /**
   * Reverse proxies (addresses / CIDR ranges) whose `X-Forwarded-For` is believed. Empty (the default): the
   * client address is the TCP peer and the header is ignored. See docs/access-control.md.
   */
  trustedProxies: string[];
  /**
   * Namespace of the failed-authentication counters and blocks in Redis: deployments (or test stacks)
   * sharing one Redis keep apart by setting different ones. Empty by default.
   */
  authRedisNamespace: string;
}
