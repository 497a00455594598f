import type { ClientLimits } from '@gw/common';

/**
 * The whole runtime configuration, parsed once from the environment.
 * Every field is validated at start: a bad value stops the process with a message naming the variable.
 * The slow-client limits are `ClientLimits` (@gw/common, where they are enforced).
 */
export interface AppConfig extends ClientLimits {
  host: string;
  gatewayPort: number;
  adminPort: number;
  dataDir: string;
  /** Undefined means: embedded PGlite in `${dataDir}/pg`. */
  databaseUrl?: string;
  databasePoolSize: number;
  /** Undefined means: limits live in process memory. */
  redisUrl?: string;
  /**
   * Event loops of one gateway process (`apps/gateway`: node:cluster workers on one port, supervised by a
   * primary). GATEWAY_WORKERS; unset: the usable cores (CPU affinity and container limit) when `redisUrl` is
   * set, else 1; above 1 needs `redisUrl`. `npm start` (all-in-one) always runs one. See docs/operations.md.
   */
  gatewayWorkers: number;
  adminToken?: string;
  /**
   * When set (METRICS_TOKEN or METRICS_TOKEN_FILE), `GET /metrics` (gateway and admin) needs
   * `Authorization: Bearer <metricsToken>`; when not, it answers loopback clients only.
   */
  metricsToken?: string;
  /** 32-byte key (base64 or hex) that encrypts provider credentials; generated into dataDir when unset. */
  masterKey?: string;
  openaiApiKey?: string;
  openaiBaseUrl: string;
  openrouterApiKey?: string;
  openrouterBaseUrl: string;
  ollamaBaseUrl?: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** `pretty` (readable lines, pino-pretty) or `json` (one JSON object a line). Default: pretty on a terminal. */
  logFormat: 'json' | 'pretty';
  bodyLimit: string;
  /** Responses WebSocket (`/v1/responses` upgrade): the history one connection may hold, in bytes (docs/codex.md). */
  wsHistoryMaxBytes: number;
  /** Open Responses WebSockets per process, and per key. */
  wsMaxConnections: number;
  wsMaxConnectionsPerKey: number;
  /** A Responses WebSocket with no `response.create` for this long is closed (Codex reconnects on its next turn). */
  wsIdleTimeoutMs: number;
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
   * The smallest output cap a request is clamped to when its worst case does not fit what its budget has
   * left and nothing else is in flight (below it: insufficient_quota). See docs/limits.md.
   */
  budgetMinOutputTokens: number;
  /**
   * USD per 1M input / output tokens charged for a model that has no price in the override table, the
   * supplement or the catalog, when `unknownModelPricing` is `fallback` (see docs/limits.md#pricing).
   */
  defaultPricePerMInput: number;
  defaultPricePerMOutput: number;
  /**
   * What a request for a model without any price gets: `fallback` (served, charged the default price) or
   * `refuse` (403 `model_not_priced` before anything is forwarded). Either way it is counted and logged.
   */
  unknownModelPricing: 'fallback' | 'refuse';
  upstreamConnectTimeoutMs: number;
  /** Streams only: waiting for the response head (a non-stream head comes with the whole answer: total timeout). */
  upstreamFirstByteTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  upstreamTotalTimeoutMs: number;
  /** Consecutive upstream failures that open a target's circuit; 0 disables circuit breaking. */
  circuitFailureThreshold: number;
  /** How long an open circuit sends traffic elsewhere before it lets one probe through. */
  circuitCooldownMs: number;
  /** How long a target is skipped after an upstream 429 that says nothing about when to come back. */
  upstreamRateLimitBackoffMs: number;
  /** Cap on the wait an upstream 429 asks for (Retry-After, x-ratelimit-reset-*). */
  upstreamMaxBackoffMs: number;
  /** How long a target is skipped after its provider said the account is out of credit (0 = not skipped). */
  upstreamQuotaBackoffMs: number;
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
  /**
   * Provider egress (docs/access-control.md#provider-egress): comma lists of CIDRs, addresses, host names,
   * `*` or the keywords `loopback`/`private`, each with an optional `:port`. Deny wins; the built-in denies
   * (metadata, link-local, own ports, DATABASE_URL/REDIS_URL) are never re-opened by EGRESS_ALLOW.
   */
  egressAllow?: string;
  egressDeny?: string;
  /** What is neither allowed nor denied: `allow` (loopback and private ranges work, e.g. a local Ollama) or `deny`. */
  egressDefault: 'allow' | 'deny';
}
