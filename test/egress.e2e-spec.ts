import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import type { EgressResolver } from '@gw/providers';
import { FakeProvider, Stack, startGatewayReplica, startStack } from '@gw/testing';
import { createGatewayApp } from '../apps/gateway/src/main';

jest.setTimeout(60_000);

/**
 * Provider URLs follow the egress policy (docs/access-control.md#provider-egress): root cannot point a
 * provider at the metadata service, the database, Redis or the gateway itself (400 at create/update), a name
 * that resolves to a denied address is refused when the connection would open (502 upstream_egress_denied, no
 * socket), and what an internal service answers never reaches a tenant verbatim.
 *
 * Every server here is on loopback. Nothing ever connects to 169.254.169.254 or any other address: denied
 * destinations are refused before a socket exists, which the trap servers (counting connections) prove for
 * the loopback ones. There is no DNS: names resolve through the injected resolver below.
 */

/** A TCP server that counts connections, answering each with `reply` (or nothing). */
async function trapServer(reply?: (socket: net.Socket) => void) {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (reply) s.once('data', () => reply(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An HTTP upstream whose every answer is `status` with `body` as `contentType`. */
async function httpUpstream(status: number, body: string, headers: Record<string, string> = { 'content-type': 'text/html' }) {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(status, headers);
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const REDIS_ERR = "-ERR unknown command 'POST', with args beginning with: '/v1/chat/completions' 'HTTP/1.1' redis_secret_marker\r\n";
const HTML_PAGE = '<html><head><title>Internal Admin</title></head><body>html_secret_marker: jdbc:postgresql://10.0.0.7/prod</body></html>';
// What a Postgres server sends to a client that does not speak its protocol: an ErrorResponse, binary framed.
const PG_ERROR = Buffer.concat([
  Buffer.from('E\u0000\u0000\u0000\u0050', 'latin1'),
  Buffer.from('SFATAL\u0000C08P01\u0000Mpg_secret_marker invalid frontend message type 80\u0000\u0000', 'latin1'),
]);

describe('egress policy: where providers may point', () => {
  let stack: Stack;
  let fake: FakeProvider;
  /** Listens on a loopback port that EGRESS_DENY refuses: any connection to it is a failure of the policy. */
  let trap: Awaited<ReturnType<typeof trapServer>>;
  let redisLike: Awaited<ReturnType<typeof trapServer>>;
  let pgLike: Awaited<ReturnType<typeof trapServer>>;
  let html500: Awaited<ReturnType<typeof httpUpstream>>;
  let html404: Awaited<ReturnType<typeof httpUpstream>>;
  let redirect: Awaited<ReturnType<typeof httpUpstream>>;
  let secret: string;
  const resolved: string[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  let warnSpy: jest.SpyInstance;
  let errorSpy: jest.SpyInstance;
  const ids: Record<string, string> = {};

  /** Stands in for DNS (there is none here): names a test may use, each to a loopback or a denied address. */
  const resolver: EgressResolver = async (host) => {
    resolved.push(host);
    const table: Record<string, string> = {
      'evil.test': '169.254.169.254',
      'mapped.test': '::ffff:169.254.169.254',
      'trap.test': '127.0.0.1',
      'ok.test': '127.0.0.1',
      localhost: '127.0.0.1',
    };
    const address = table[host];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return [{ address, family: net.isIP(address) }];
  };

  async function provider(name: string, baseUrl: string) {
    const r = await stack.api('POST', '/admin/providers', { name, kind: 'openai', baseUrl });
    if (r.status !== 201) throw new Error(`provider ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    ids[name] = r.body.id;
    return r.body.id as string;
  }
  async function route(modelPattern: string, providers: string[]) {
    const r = await stack.api('POST', '/admin/routes', {
      modelPattern,
      targets: providers.map((p, priority) => ({ providerId: ids[p], model: 'gpt-4o-mini', priority })),
      settings: { maxAttempts: 2, backoffMs: 1 },
    });
    if (r.status !== 201) throw new Error(`route ${modelPattern}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  async function chat(model: string, stream = false) {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text, headers: res.headers };
  }

  beforeAll(async () => {
    warnSpy = jest.spyOn(Logger.prototype, 'warn').mockImplementation(function (this: Logger, m: unknown) {
      warnings.push(String(m));
    });
    errorSpy = jest.spyOn(Logger.prototype, 'error').mockImplementation(function (this: Logger, m: unknown) {
      errors.push(String(m));
    });
    trap = await trapServer((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}'));
    redisLike = await trapServer((s) => s.end(REDIS_ERR));
    pgLike = await trapServer((s) => s.end(PG_ERROR));
    html500 = await httpUpstream(500, HTML_PAGE);
    html404 = await httpUpstream(404, HTML_PAGE);
    redirect = await httpUpstream(307, '', { location: `http://127.0.0.1:${trap.port}/v1/chat/completions` });
    fake = await FakeProvider.start({ flavor: 'openai' });
    stack = await startStack({ egressDeny: `127.0.0.1:${trap.port}`, circuitFailureThreshold: 2 }, { egressResolver: resolver });
    const tenant = await stack.api('POST', '/admin/tenants', { name: 'egress' });
    secret = (await stack.api('POST', `/admin/tenants/${tenant.body.id}/keys`, { name: 'k' })).body.secret;
  });

  afterAll(async () => {
    await stack?.close();
    for (const s of [fake, trap, redisLike, pgLike, html500, html404, redirect]) await s?.close();
    warnSpy?.mockRestore();
    errorSpy?.mockRestore();
  });

  describe('at create and update (admin API)', () => {
    const hostPort = (url: string) => {
      const u = new URL(url);
      return { host: u.hostname, port: u.port };
    };

    it.each([
      ['the metadata address', 'http://169.254.169.254/latest/meta-data', /cloud metadata \(169\.254\.169\.254\)/],
      ['the metadata address, IPv4-mapped', 'http://[::ffff:169.254.169.254]/v1', /cloud metadata \(169\.254\.169\.254\)/],
      ['the metadata address, as a decimal number', 'http://2852039166/v1', /cloud metadata/],
      ['the AWS IPv6 metadata address', 'http://[fd00:ec2::254]/v1', /cloud metadata \(fd00:ec2::254\)/],
      ['the GCP metadata name', 'http://metadata.google.internal/computeMetadata/v1', /metadata\.google\.internal/],
      ['a link-local address', 'http://169.254.10.20:8080/v1', /link-local/],
      ['0.0.0.0 (this host)', 'http://0.0.0.0:11434/v1', /unspecified/],
      ['a multicast address', 'http://224.0.0.1/v1', /multicast/],
      ['a port EGRESS_DENY names', 'http://127.0.0.1:TRAP/v1', /EGRESS_DENY 127\.0\.0\.1:\d+/],
    ])('refuses %s: 400 egress_denied naming the rule', async (_what, url, rule) => {
      const r = await stack.api('POST', '/admin/providers', { name: 'nope', kind: 'openai', baseUrl: url.replace('TRAP', String(trap.port)) });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'egress_denied', param: 'baseUrl' });
      expect(r.body.error.message).toMatch(/is not allowed by the gateway's egress policy/);
      expect(r.body.error.message).toMatch(rule);
    });

    it("refuses the database's host:port, also written as localhost or [::1]", async () => {
      const { port } = hostPort(stack.dbUrl);
      for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.2']) {
        const r = await stack.api('POST', '/admin/providers', { name: 'db', kind: 'openai', baseUrl: `http://${host}:${port}/v1` });
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe('egress_denied');
        expect(r.body.error.message).toMatch(/DATABASE_URL/);
      }
    });

    // Only a stack with Redis has a REDIS_URL to protect (the unit tests cover the rule itself).
    (process.env.TEST_REDIS_URL ? it : it.skip)("refuses REDIS_URL's host:port (with TEST_REDIS_URL)", async () => {
      const { port } = hostPort(stack.config.redisUrl!);
      const r = await stack.api('POST', '/admin/providers', { name: 'redis', kind: 'openai', baseUrl: `http://localhost:${port}/v1` });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(/REDIS_URL/);
    });

    it("refuses the gateway's and the admin's own ports (the ports they really listen on)", async () => {
      for (const url of [stack.gatewayUrl, stack.adminUrl, stack.gatewayUrl.replace('127.0.0.1', 'localhost')]) {
        const r = await stack.api('POST', '/admin/providers', { name: 'self', kind: 'openai', baseUrl: `${url}/v1` });
        expect(r.status).toBe(400);
        expect(r.body.error.message).toMatch(/the gateway's own port/);
      }
    });

    it('refuses a PATCH to a denied address and changes nothing; malformed URLs are a 400, never a 500', async () => {
      const id = await provider('patched', `http://127.0.0.1:${fake.port}/v1`);
      const r = await stack.api('PATCH', `/admin/providers/${id}`, { baseUrl: 'http://169.254.169.254/v1', credential: null });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('egress_denied');
      expect((await stack.api('GET', `/admin/providers/${id}`)).body.baseUrl).toBe(`http://127.0.0.1:${fake.port}/v1`);
      for (const baseUrl of ['http://[::1/v1', 'http://%zz/v1', 'http://:80/v1', 'https://[fe80::1%25eth0]/v1']) {
        const bad = await stack.api('POST', '/admin/providers', { name: 'bad', kind: 'openai', baseUrl });
        expect(bad.status).toBe(400);
        expect(bad.body.error.param).toBe('baseUrl');
      }
    });

    it('a bad EGRESS_ALLOW / EGRESS_DENY entry stops the app at start, naming the variable', async () => {
      await expect(createGatewayApp({ ...stack.config, egressDeny: 'loopback, 1.2.3.999' }, stack.options)).rejects.toThrow(
        /EGRESS_DENY: "1\.2\.3\.999" is not an address/,
      );
    });

    it('the environment bootstrap refuses a denied OPENAI_BASE_URL / OLLAMA_BASE_URL with a clear log, without probing it', async () => {
      const replica = await startGatewayReplica(stack, {
        openaiApiKey: 'sk-env-key-0123456789',
        openaiBaseUrl: 'http://169.254.169.254/v1',
        ollamaBaseUrl: `http://127.0.0.1:${trap.port}`,
      });
      await replica.close();
      expect(
        errors.some((m) =>
          m.startsWith('OPENAI_BASE_URL=http://169.254.169.254/v1 refused, provider not registered: baseUrl 169.254.169.254:80 is not allowed'),
        ),
      ).toBe(true);
      expect(errors.some((m) => m.startsWith(`OLLAMA_BASE_URL=http://127.0.0.1:${trap.port} refused`))).toBe(true);
      const names = (await stack.api('GET', '/admin/providers')).body.map((p: { name: string }) => p.name);
      expect(names).not.toContain('openai');
      expect(names).not.toContain('ollama');
    });

    it('nothing was connected to', () => {
      expect(trap.connections).toBe(0);
    });
  });

  describe('at connect time, on the resolved addresses', () => {
    beforeAll(async () => {
      await provider('good', `http://127.0.0.1:${fake.port}/v1`);
      await provider('evil', 'http://evil.test/v1'); // a name passes at create: it is judged on what it resolves to
      await provider('mapped', 'http://mapped.test/v1');
      await provider('trapname', `http://trap.test:${trap.port}/v1`);
      await provider('okname', `http://ok.test:${fake.port}/v1`);
      await provider('local', `http://localhost:${fake.port}/v1`);
      await route('m-evil', ['evil']);
      await route('m-mapped', ['mapped']);
      await route('m-trap', ['trapname']);
      await route('m-failover', ['evil', 'good']);
      await route('m-okname', ['okname']);
      await route('m-local', ['local']);
      await route('m-good', ['good']);
    });

    it.each(['m-evil', 'm-mapped', 'm-trap'])('%s: 502 upstream_egress_denied naming the provider, no internal detail, no connection', async (model) => {
      for (const stream of [false, true]) {
        const r = await chat(model, stream);
        expect(r.status).toBe(502);
        expect(r.body.error).toMatchObject({ type: 'server_error', code: 'upstream_egress_denied', param: null });
        expect(r.body.error.message).toMatch(/^(evil|mapped|trapname): provider address not allowed by the gateway's egress policy$/);
        expect(r.text).not.toMatch(/169\.254|127\.0\.0\.1|trap\.test|evil\.test|built-in|EGRESS/);
      }
      expect(trap.connections).toBe(0);
    });

    it('is logged for the operator with the address and the rule', () => {
      expect(errors.some((m) => m.includes('evil: egress to evil.test:80 denied (built-in: cloud metadata (169.254.169.254)); no connection made'))).toBe(true);
      expect(errors.some((m) => new RegExp(`trapname: egress to trap\\.test:${trap.port} denied \\(EGRESS_DENY 127\\.0\\.0\\.1:${trap.port}\\)`).test(m))).toBe(
        true,
      );
    });

    it('never opens the circuit: it is a configuration error, not an unhealthy upstream', async () => {
      for (let i = 0; i < 4; i++) expect((await chat('m-evil')).body.error.code).toBe('upstream_egress_denied');
    });

    it('fails over to the next target like a connection error', async () => {
      const r = await chat('m-failover');
      expect(r.status).toBe(200);
      expect(r.headers.get('x-gateway-provider')).toBe('good');
    });

    it('a name or localhost resolving to an allowed loopback port works, and is resolved once per connection, not per request', async () => {
      const before = resolved.filter((h) => h === 'ok.test').length;
      for (let i = 0; i < 3; i++) expect((await chat('m-okname')).status).toBe(200);
      expect((await chat('m-local')).status).toBe(200);
      // Keep-alive: the pooled connection is reused, so the three requests needed one lookup.
      expect(resolved.filter((h) => h === 'ok.test').length - before).toBe(1);
    });

    it('a provider stored at a denied address (before the policy, or by hand) is refused at connect time too', async () => {
      const id = await provider('stored', `http://127.0.0.1:${fake.port}/v1`);
      await stack.sql('UPDATE providers SET base_url = $1 WHERE id = $2', ['http://169.254.169.254/v1', id]);
      // Any admin change reloads the gateway's cache; this one leaves the provider's URL alone.
      expect((await stack.api('PATCH', `/admin/providers/${id}`, { enabled: true })).status).toBe(200);
      await route('m-stored', ['stored']);
      const started = Date.now();
      const r = await chat('m-stored');
      expect(r.status).toBe(502);
      expect(r.body.error.code).toBe('upstream_egress_denied');
      // Refused before any connect: no connect timeout was waited for.
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });

  describe('upstream answers', () => {
    beforeAll(async () => {
      await provider('redislike', `http://127.0.0.1:${redisLike.port}/v1`);
      await provider('pglike', `http://127.0.0.1:${pgLike.port}/v1`);
      await provider('html500', `http://127.0.0.1:${html500.port}/v1`);
      await provider('html404', `http://127.0.0.1:${html404.port}/v1`);
      await provider('redirect', `http://127.0.0.1:${redirect.port}/v1`);
      await route('m-redis', ['redislike']);
      await route('m-pg', ['pglike']);
      await route('m-html500', ['html500']);
      await route('m-html404', ['html404']);
      await route('m-redirect', ['redirect']);
    });

    it.each([
      ['m-redis', 'redislike', 502, /^redislike: did not answer in HTTP$/],
      ['m-pg', 'pglike', 502, /^pglike: did not answer in HTTP$/],
      ['m-html500', 'html500', 500, /^html500: upstream answered HTTP 500$/],
      ['m-html404', 'html404', 404, /^html404: upstream answered HTTP 404$/],
    ])('%s: the tenant gets the status and the provider, none of what the service said', async (model, _name, status, message) => {
      const r = await chat(model);
      expect(r.status).toBe(status);
      expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(r.body.error.message).toMatch(message);
      expect(r.text).not.toMatch(/secret_marker|-ERR|<html|Internal Admin|jdbc|FATAL|frontend/);
    });

    it('the log keeps what a non-OpenAI error body said (bounded), for the operator', () => {
      expect(warnings.some((m) => m.includes('html500 answered HTTP 500 with a body that is not an OpenAI error') && m.includes('html_secret_marker'))).toBe(
        true,
      );
    });

    it('an OpenAI-style upstream error keeps its message', async () => {
      fake.failNext(1, 400, {
        body: { error: { message: 'Invalid value for messages', type: 'invalid_request_error', param: 'messages', code: 'invalid_value' } },
      });
      const r = await chat('m-good');
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ message: 'good: Invalid value for messages', code: 'invalid_value' });
    });

    it('a redirect is never followed (its Location is a denied port here): 502 upstream_redirect', async () => {
      const r = await chat('m-redirect');
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({
        code: 'upstream_redirect',
        message: 'redirect: answered with a redirect (HTTP 307), which the gateway does not follow',
      });
      expect(redirect.requests).toBe(1);
      expect(trap.connections).toBe(0);
    });
  });
});
