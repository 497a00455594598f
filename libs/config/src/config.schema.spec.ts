import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from './config.schema';
import { usableCores } from './cpu-count';

describe('parseConfig', () => {
  it('gives the documented defaults on an empty environment', () => {
    const c = parseConfig({});
    expect(c.gatewayPort).toBe(8080);
    expect(c.adminPort).toBe(8081);
    expect(c.dataDir).toBe('./data');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.openaiBaseUrl).toBe('https://api.openai.com/v1');
    expect([c.defaultPricePerMInput, c.defaultPricePerMOutput]).toEqual([10, 30]);
    // the journal sits under the data dir; a dead replica's Redis holds end within 30 s
    expect(c.journalDir).toBeUndefined();
    expect(c.limitsLeaseMs).toBeLessThanOrEqual(30_000);
  });

  it('documented upstream timeout and backoff defaults (docs/resilience.md)', () => {
    expect(parseConfig({})).toMatchObject({
      upstreamFirstByteTimeoutMs: 60_000,
      // not below Codex's own stream_idle_timeout_ms (300 s): the gateway must not cut what Codex still waits for
      upstreamIdleTimeoutMs: 300_000,
      upstreamTotalTimeoutMs: 600_000,
      upstreamRateLimitBackoffMs: 1_000,
      upstreamMaxBackoffMs: 60_000,
      upstreamQuotaBackoffMs: 60_000,
    });
    expect(parseConfig({ UPSTREAM_QUOTA_BACKOFF_MS: '0' }).upstreamQuotaBackoffMs).toBe(0);
    expect(() => parseConfig({ UPSTREAM_MAX_BACKOFF_MS: '10' })).toThrow(/UPSTREAM_MAX_BACKOFF_MS/);
  });

  it('LOG_FORMAT: json or pretty; unset follows whether stdout is a terminal; anything else is refused by name', () => {
    expect(parseConfig({ LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(parseConfig({ LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(parseConfig({}).logFormat).toBe(process.stdout.isTTY ? 'pretty' : 'json');
    expect(() => parseConfig({ LOG_FORMAT: 'xml' })).toThrow(ConfigError);
    expect(() => parseConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT must be one of json, pretty \(got "xml"\)/);
  });

  it('reads fractional prices and refuses negative ones', () => {
    expect(parseConfig({ DEFAULT_PRICE_PER_M_INPUT: '0.5', DEFAULT_PRICE_PER_M_OUTPUT: '0' })).toMatchObject({
      defaultPricePerMInput: 0.5,
      defaultPricePerMOutput: 0,
    });
    expect(() => parseConfig({ DEFAULT_PRICE_PER_M_INPUT: '-1' })).toThrow(/DEFAULT_PRICE_PER_M_INPUT/);
  });

  it('reads the metrics token from METRICS_TOKEN_FILE (trimmed); METRICS_TOKEN wins; a bad file is named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-'));
    const file = join(dir, 'metrics.token');
    writeFileSync(file, 'generated-token-0123456789abcdef\n');
    expect(parseConfig({ METRICS_TOKEN_FILE: file }).metricsToken).toBe('generated-token-0123456789abcdef');
    expect(parseConfig({ METRICS_TOKEN_FILE: file, METRICS_TOKEN: 'from-env-0123456789abc' }).metricsToken).toBe('from-env-0123456789abc');
    expect(() => parseConfig({ METRICS_TOKEN_FILE: join(dir, 'missing') })).toThrow(/METRICS_TOKEN_FILE .*ENOENT/);
    writeFileSync(file, 'short\n');
    expect(() => parseConfig({ METRICS_TOKEN_FILE: file })).toThrow(/at least 16/);
    expect(parseConfig({}).metricsToken).toBeUndefined();
  });

  it('UNKNOWN_MODEL_PRICING: fallback by default, refuse on request, anything else named', () => {
    expect(parseConfig({}).unknownModelPricing).toBe('fallback');
    expect(parseConfig({ UNKNOWN_MODEL_PRICING: 'refuse' }).unknownModelPricing).toBe('refuse');
    expect(() => parseConfig({ UNKNOWN_MODEL_PRICING: 'free' })).toThrow(/UNKNOWN_MODEL_PRICING must be one of fallback, refuse/);
  });

  it('GATEWAY_WORKERS: unset is every usable core with Redis and DATABASE_URL, else 1; more than 1 needs both', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://gw@db:5432/gw' };
    expect(parseConfig({}).gatewayWorkers).toBe(1);
    expect(parseConfig(redis).gatewayWorkers).toBe(usableCores());
    // the embedded PGlite serves one process
    expect(parseConfig({ REDIS_URL: redis.REDIS_URL }).gatewayWorkers).toBe(1);
    expect(() => parseConfig({ REDIS_URL: redis.REDIS_URL, GATEWAY_WORKERS: '2' })).toThrow(/GATEWAY_WORKERS=2 needs DATABASE_URL/);
    expect(parseConfig({ ...redis, GATEWAY_WORKERS: '3' }).gatewayWorkers).toBe(3);
    expect(parseConfig({ GATEWAY_WORKERS: '1' }).gatewayWorkers).toBe(1);
    expect(parseConfig({ ...redis, GATEWAY_WORKERS: ' 1 ' }).gatewayWorkers).toBe(1);
    expect(() => parseConfig({ GATEWAY_WORKERS: '2' })).toThrow(/GATEWAY_WORKERS=2 needs REDIS_URL: rate limits, concurrency and budgets must be shared/);
    for (const bad of ['0', '-1', '1.5', 'auto', '2000']) {
      expect(() => parseConfig({ ...redis, GATEWAY_WORKERS: bad })).toThrow(
        new RegExp(`GATEWAY_WORKERS must be an integer between 1 and 1024 \\(got "${bad.replace('.', '\\.')}"\\)`),
      );
    }
  });

  it('names every bad variable', () => {
    let err: unknown;
    try {
      parseConfig({ GATEWAY_PORT: 'abc', DATABASE_URL: 'mysql://x', MASTER_KEY: 'short' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('GATEWAY_PORT');
    expect(msg).toContain('DATABASE_URL');
    expect(msg).toContain('MASTER_KEY');
  });

  it('strips trailing slashes from base URLs', () => {
    expect(parseConfig({ OLLAMA_BASE_URL: 'http://localhost:11434/v1/' }).ollamaBaseUrl).toBe('http://localhost:11434/v1');
  });

  it('reads TRUSTED_PROXIES as a list of addresses and ranges, empty by default, and refuses anything else', () => {
    expect(parseConfig({}).trustedProxies).toEqual([]);
    expect(parseConfig({ TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1 fd00::/8' }).trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);
    expect(() => parseConfig({ TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(/TRUSTED_PROXIES/);
    expect(() => parseConfig({ TRUSTED_PROXIES: 'ingress.local' })).toThrow(/TRUSTED_PROXIES/);
  });

  it('reads the egress policy settings (entries are parsed by the policy itself, at start)', () => {
    expect(parseConfig({})).toMatchObject({ egressDefault: 'allow', egressAllow: undefined, egressDeny: undefined });
    expect(parseConfig({ EGRESS_DEFAULT: 'deny', EGRESS_ALLOW: 'api.openai.com', EGRESS_DENY: ' loopback ' })).toMatchObject({
      egressDefault: 'deny',
      egressAllow: 'api.openai.com',
      egressDeny: 'loopback',
    });
    expect(() => parseConfig({ EGRESS_DEFAULT: 'block' })).toThrow(/EGRESS_DEFAULT must be one of allow, deny/);
  });

  it('slow-client limits: documented defaults (docs/access-control.md#slow-clients), 0 turns the body rate and the cap off, bad values named', () => {
    expect(parseConfig({})).toMatchObject({
      headersTimeoutMs: 10_000,
      maxHeaderBytes: 16_384,
      keepAliveTimeoutMs: 5_000,
      bodyMinBytesPerSecond: 8_192,
      bodyRateWindowMs: 10_000,
      maxConnectionsPerAddress: 256,
    });
    expect(parseConfig({ BODY_MIN_RATE_BYTES_PER_S: '0', MAX_CONNECTIONS_PER_ADDRESS: '0' })).toMatchObject({
      bodyMinBytesPerSecond: 0,
      maxConnectionsPerAddress: 0,
    });
    // 0 would mean "never" to Node for these.
    expect(() => parseConfig({ HEADERS_TIMEOUT_MS: '0' })).toThrow(/HEADERS_TIMEOUT_MS/);
    expect(() => parseConfig({ KEEP_ALIVE_TIMEOUT_MS: '0' })).toThrow(/KEEP_ALIVE_TIMEOUT_MS/);
    expect(() => parseConfig({ MAX_HEADER_BYTES: '16k' })).toThrow(/MAX_HEADER_BYTES/);
  });
});
