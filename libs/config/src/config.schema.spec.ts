import { ConfigError, parseConfig } from './config.schema';

describe('parseConfig', () => {
  it('gives the documented defaults on an empty environment', () => {
    const c = parseConfig({});
    expect(c.gatewayPort).toBe(8080);
    expect(c.adminPort).toBe(8081);
    expect(c.dataDir).toBe('./data');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.openaiBaseUrl).toBe('https://api.openai.com/v1');
    expect([c.defaultPricePerMInput, c.defaultPricePerMOutput]).toEqual([10, 30]);
  });

  it('reads fractional prices and refuses negative ones', () => {
    expect(parseConfig({ DEFAULT_PRICE_PER_M_INPUT: '0.5', DEFAULT_PRICE_PER_M_OUTPUT: '0' })).toMatchObject({ defaultPricePerMInput: 0.5, defaultPricePerMOutput: 0 });
    expect(() => parseConfig({ DEFAULT_PRICE_PER_M_INPUT: '-1' })).toThrow(/DEFAULT_PRICE_PER_M_INPUT/);
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
});
