import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ClientLimits, applyClientLimits } from './client-limits.setup';

/** The documented defaults (AppConfig's, from parseConfig: docs/access-control.md#slow-and-greedy-clients). */
const DEFAULT_CLIENT_LIMITS: ClientLimits = {
  headersTimeoutMs: 10_000,
  maxHeaderBytes: 16_384,
  keepAliveTimeoutMs: 5_000,
  bodyMinBytesPerSecond: 8_192,
  bodyRateWindowMs: 10_000,
  maxConnectionsPerAddress: 256,
};

describe('applyClientLimits', () => {
  it("sets the server's timeouts and header size: no total request deadline (bodies are bounded by rate)", () => {
    const server = http.createServer() as http.Server & { connectionsCheckingInterval: number; maxHeaderSize?: number };
    applyClientLimits(server, { ...DEFAULT_CLIENT_LIMITS, headersTimeoutMs: 2_000 });
    expect(server.requestTimeout).toBe(0);
    expect(server.headersTimeout).toBe(2_000);
    expect(server.connectionsCheckingInterval).toBe(200);
    expect(server.keepAliveTimeout).toBe(5_000);
    expect(server.maxHeaderSize).toBe(16_384);
    applyClientLimits(server, DEFAULT_CLIENT_LIMITS);
    expect(server.connectionsCheckingInterval).toBe(1_000);
  });

  it('answers what Node refuses by itself OpenAI-shaped: unparseable HTTP → 400, oversized headers → 431', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    applyClientLimits(server, { ...DEFAULT_CLIENT_LIMITS, maxHeaderBytes: 2_048 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const exchange = (payload: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(payload));
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => undefined);
        s.on('close', () => resolve(got));
      });
    const bad = await exchange('NOT HTTP AT ALL\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)).error).toEqual({
      message: expect.any(String),
      type: 'invalid_request_error',
      param: null,
      code: 'malformed_request',
    });
    const big = await exchange(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(3_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error.code).toBe('headers_too_large');
    await new Promise<void>((r) => server.close(() => r()));
  });
});
