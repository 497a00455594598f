import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FakeProvider,
  HOSTILE_CORE,
  HOSTILE_VALUES,
  Stack,
  TEST_ADMIN_TOKEN,
  fieldPaths,
  hostileBodies,
  pathLabel,
  pooled,
  rawRequest,
  startStack,
  stringifyHostile,
  withField,
} from '@gw/testing';

jest.setTimeout(180_000);

/**
 * Issue 13 point 7, "no 500 from any input": every admin operation in docs/openapi.json and every data-plane
 * endpoint, with each field of a valid body replaced by each hostile value (test/support/hostile.ts), whole
 * bodies that are wrong as a whole, hostile path ids and query values, and hostile header values written on a
 * raw socket. Every answer is below 500, or (data plane, upstream reached) a 502–504 that blames the upstream,
 * and never `internal_error`; both apps serve normally afterwards. Deterministic (no randomness), 8 at a time.
 *
 * Failed authentications from the hostile Authorization headers each come from their own X-Forwarded-For
 * address (the stack trusts loopback as a proxy), so the failure limiter never blocks the rest of the suite.
 */

const CONCURRENCY = 8;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Case {
  app: 'admin' | 'gateway';
  method: string;
  path: string;
  label: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Instead of the root token (admin) or the data plane's key. */
  token?: string;
}

/** Path ids that are no id: each replaces one `{param}` at a time. */
const HOSTILE_IDS: readonly (readonly [string, string])[] = [
  ['NUL', '%00'],
  ['a uuid with NUL', '00000000-0000-4000-8000-000000000000%00'],
  ['NUL inside', 'a%00b'],
  ['..', '..'],
  ['encoded ..', '%2e%2e'],
  ['encoded slash', 'a%2Fb'],
  ['overlong', 'x'.repeat(5000)],
  ['not a uuid', 'not-a-uuid'],
  ['nil uuid', '00000000-0000-0000-0000-000000000000'],
  ['max uuid', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  ['invalid percent', '%'],
  ['invalid UTF-8', '%ff%fe'],
  ['control characters', '%01%1b%7f'],
  ['line separator', '%E2%80%A8'],
  ['lone surrogate (CESU)', '%ED%A0%80'],
  ['a quote', "'"],
];

/** Query values, already URL-encoded; each replaces one parameter at a time. */
const HOSTILE_QUERY: readonly (readonly [string, (p: string) => string])[] = [
  ['%00', (p) => `${p}=%00`],
  ['NUL inside', (p) => `${p}=a%00b`],
  ['control characters', (p) => `${p}=%01%1b%7f`],
  ['overlong', (p) => `${p}=${'q'.repeat(20_000)}`],
  ['empty', (p) => `${p}=`],
  ['no value', (p) => p],
  ['repeated', (p) => `${p}=a&${p}=b`],
  ['repeated valid-looking', (p) => `${p}=00000000-0000-4000-8000-000000000000&${p}=00000000-0000-4000-8000-000000000001`],
  ['bracketed array', (p) => `${p}[]=a`],
  ['bracketed object', (p) => `${p}[a]=b`],
  ['invalid UTF-8', (p) => `${p}=%ff`],
  ['invalid percent', (p) => `${p}=%`],
  ['lone surrogate (CESU)', (p) => `${p}=%ED%A0%80`],
  ['a huge number', (p) => `${p}=1e308`],
  ['-1', (p) => `${p}=-1`],
  ['2**63', (p) => `${p}=9223372036854775808`],
  ['NaN', (p) => `${p}=NaN`],
  ['a far date', (p) => `${p}=275760-09-13T00:00:00.001Z`],
  ['year 0', (p) => `${p}=0000-01-01T00:00:00Z`],
];

describe('fuzz: no input makes either app answer 500', () => {
  let stack: Stack;
  let openai: FakeProvider;
  let ollama: FakeProvider;
  let keySecret: string;
  /** Objects the admin sweep may change, revoke and (last) delete; the data plane never uses them. */
  const v: Record<string, string> = {};
  let xffSeq = 0;
  const findings: string[] = [];
  let sent = 0;

  /** A fresh client address per request that may fail authentication (10.x.y.z, via the trusted loopback proxy). */
  const nextAddress = () => {
    const n = ++xffSeq;
    return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  };

  async function send(c: Case): Promise<void> {
    const base = c.app === 'admin' ? stack.adminUrl : stack.gatewayUrl;
    const token = c.token ?? (c.app === 'admin' || c.path.startsWith('/admin/') ? TEST_ADMIN_TOKEN : keySecret);
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'x-forwarded-for': nextAddress(),
      ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...c.headers,
    };
    let status: number;
    let text: string;
    try {
      if (/\/(\.\.|%2e%2e)(\/|\?|$)/i.test(c.path)) {
        // fetch resolves `..` itself (`/tenants/T/keys/..` would be a DELETE of the tenant): sent as written.
        ({ status, text } = await rawRequest(
          base + c.path,
          c.method,
          Object.entries(headers),
          typeof c.body === 'string' ? c.body : c.body?.toString('latin1'),
        ));
      } else {
        const res = await fetch(base + c.path, { method: c.method, headers, body: c.body, signal: AbortSignal.timeout(30_000) });
        status = res.status;
        text = await res.text();
      }
    } catch (e) {
      findings.push(`${c.app} ${c.method} ${c.path.slice(0, 120)} [${c.label}] → no answer: ${(e as Error).message}`);
      return;
    }
    sent++;
    judge(c, status, text);
  }

  function judge(c: Pick<Case, 'app' | 'method' | 'path' | 'label'>, status: number, text: string): void {
    let ok = status > 0 && status < 500;
    if (status >= 502 && status <= 504 && c.app === 'gateway' && c.path.startsWith('/v1/')) {
      // An upstream's fault is legitimate, but only as an OpenAI-shaped error that says so.
      try {
        const body = JSON.parse(text.slice(text.indexOf('{')));
        ok = (typeof body?.error?.message === 'string' && body.error.type === 'server_error') || typeof body?.error?.code === 'string';
      } catch {
        ok = false;
      }
    }
    if (text.includes('internal_error')) ok = false;
    const cls = status === 401 || status === 403 ? String(status) : `${Math.floor(status / 100)}xx`;
    classes.set(cls, (classes.get(cls) ?? 0) + 1);
    if (!ok) findings.push(`${c.app} ${c.method} ${c.path.slice(0, 120)} [${c.label}] → ${status} ${text.slice(0, 300).replace(/\s+/g, ' ')}`);
  }

  async function run(cases: Case[]): Promise<void> {
    await pooled(
      CONCURRENCY,
      cases.map((c) => () => send(c)),
    );
  }

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', strictModels: false });
    ollama = await FakeProvider.start({ flavor: 'ollama', strictModels: false });
    stack = await startStack({ trustedProxies: ['127.0.0.1'] });
    const ok = (r: { status: number; body: any }, what: string) => {
      if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    // The data plane's own objects.
    const tenant = ok(await stack.api('POST', '/admin/tenants', { name: 'fuzz-dp' }), 'tenant');
    keySecret = ok(await stack.api('POST', `/admin/tenants/${tenant.id}/keys`, { name: 'k' }), 'key').secret;
    const pOpenai = ok(await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: openai.baseUrl }), 'provider').id;
    const pOllama = ok(await stack.api('POST', '/admin/providers', { name: 'ollama', kind: 'ollama', baseUrl: ollama.baseUrl }), 'provider').id;
    for (const [pattern, providerId] of [
      ['gpt-4o-mini', pOpenai],
      ['text-embedding-3-small', pOpenai],
      ['gpt-oss:20b', pOllama],
    ]) {
      ok(await stack.api('POST', '/admin/routes', { modelPattern: pattern, targets: [{ providerId }], settings: { maxAttempts: 1 } }), 'route');
    }
    // The admin sweep's victims.
    v.tenant = ok(await stack.api('POST', '/admin/tenants', { name: 'fuzz-victim', allowTenantRoutes: true }), 'victim tenant').id;
    v.key = ok(await stack.api('POST', `/admin/tenants/${v.tenant}/keys`, { name: 'vk' }), 'victim key').id;
    v.tenantToken = ok(await stack.api('POST', `/admin/tenants/${v.tenant}/tokens`, { name: 'vt', role: 'viewer' }), 'victim tenant token').id;
    v.token = ok(await stack.api('POST', '/admin/tokens', { name: 'vr', role: 'admin', tenantId: v.tenant }), 'victim token').id;
    v.provider = ok(await stack.api('POST', '/admin/providers', { name: 'fuzz-victim', kind: 'openai', baseUrl: openai.baseUrl }), 'victim provider').id;
    v.route = ok(await stack.api('POST', '/admin/routes', { modelPattern: 'fuzz-victim', targets: [{ providerId: v.provider }] }), 'victim route').id;
    v.price = ok(await stack.api('POST', '/admin/prices', { modelPattern: 'fuzz-victim-*', inputPerM: 1, outputPerM: 1 }), 'victim price').id;
    // Some usage rows, so usage queries have something to compare against.
    for (const model of ['gpt-4o-mini', 'gpt-oss:20b']) {
      await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keySecret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
      });
    }
    await stack.flushLedger();
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([openai?.close(), ollama?.close()]);
  });

  let sentBefore = 0;
  /** Answers by status class in the current test: a sweep refused wholesale (401, 403) would prove nothing. */
  const classes = new Map<string, number>();
  beforeEach(() => {
    findings.length = 0;
    classes.clear();
    sentBefore = sent;
  });

  afterEach(() => {
    if (process.env.FUZZ_VERBOSE)
      console.log(`${expect.getState().currentTestName}: ${sent - sentBefore} requests ${JSON.stringify(Object.fromEntries(classes))}`);
    openai.reset();
    ollama.reset();
  });

  // ───────────────────────────── admin API: every operation in the OpenAPI document ─────────────────────────────

  const doc = JSON.parse(readFileSync(join(__dirname, '..', 'docs', 'openapi.json'), 'utf8'));

  /** A valid body per operation with one: the base every field mutation starts from. */
  function example(method: string, path: string): Record<string, unknown> | undefined {
    const expiresAt = '2030-01-01T00:00:00Z';
    const limits = { requestsPerMinute: 100, tokensPerMinute: 10_000, dailyBudgetUsd: 5, unknownModelPricing: 'refuse' };
    const key = { name: 'fk', allowedModels: ['gpt-*'], allowedIps: ['10.0.0.0/8'], expiresAt, limits };
    const provider = {
      name: 'fuzz-p',
      kind: 'openai',
      baseUrl: openai.baseUrl,
      credential: 'sk-x',
      settings: { responsesApi: true, headers: { 'X-T': 'a' }, models: ['m'], providerPreferences: { sort: 'price' } },
      enabled: true,
    };
    const route = {
      modelPattern: 'fuzz-r*',
      targets: [{ providerId: v.provider, model: 'm', weight: 1, priority: 0 }],
      settings: { maxAttempts: 1, backoffMs: 0, totalTimeoutMs: 1000 },
      enabled: true,
    };
    const price = { modelPattern: 'fuzz-p-*', inputPerM: 1, outputPerM: 2, cachedInputPerM: 0.5 };
    const table: Record<string, Record<string, unknown>> = {
      'post /admin/tenants': { name: 'fuzz-t', limits, allowTenantRoutes: true },
      'patch /admin/tenants/{id}': { name: 'fuzz-victim', limits, enabled: true, allowTenantRoutes: true },
      'post /admin/tenants/{tenantId}/keys': key,
      'patch /admin/tenants/{tenantId}/keys/{id}': key,
      'post /admin/tenants/{tenantId}/tokens': { name: 'ft', role: 'viewer', expiresAt },
      'post /admin/tokens': { name: 'ft', role: 'viewer', tenantId: v.tenant, expiresAt },
      'post /admin/providers': provider,
      'patch /admin/providers/{id}': { ...provider, name: 'fuzz-victim' },
      'post /admin/routes': { ...route, tenantId: v.tenant },
      'patch /admin/routes/{id}': { ...route, modelPattern: 'fuzz-victim' },
      'post /admin/prices': price,
      'patch /admin/prices/{id}': { ...price, modelPattern: 'fuzz-victim-*' },
    };
    return table[`${method} ${path}`];
  }

  /** The real id for `{param}` in `path`. */
  function realId(path: string, param: string): string {
    if (param === 'tenantId' || path.startsWith('/admin/tenants/{id}')) return v.tenant;
    if (path.includes('/keys/')) return v.key;
    if (path.startsWith('/admin/tenants/') && path.includes('/tokens/')) return v.tenantToken;
    if (path.startsWith('/admin/tokens/')) return v.token;
    if (path.startsWith('/admin/routes/')) return v.route;
    if (path.startsWith('/admin/providers/')) return v.provider;
    if (path.startsWith('/admin/prices/')) return v.price;
    throw new Error(`no real id for ${param} in ${path}`);
  }

  const fill = (path: string, pick: (param: string) => string) => path.replace(/\{(\w+)\}/g, (_m, p: string) => pick(p));

  /** Every operation: [method, OpenAPI path, app] (the gateway's /metrics is in the document too). */
  const operations: [string, string, 'admin' | 'gateway'][] = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => [m, path, path === '/metrics' ? 'gateway' : 'admin'] as [string, string, 'admin' | 'gateway']),
  );

  function mutationsOf(method: string, path: string, app: 'admin' | 'gateway', values = HOSTILE_VALUES): Case[] {
    const M = method.toUpperCase();
    const cases: Case[] = [];
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const url = fill(path, (p) => realId(path, p));
    const op = doc.paths[path][method];
    const ex = example(method, path);
    // Hostile path ids, one parameter at a time (a DELETE only ever with hostile ids here; real ones come last).
    for (const param of params) {
      for (const [label, id] of HOSTILE_IDS) {
        cases.push({
          app,
          method: M,
          path: fill(path, (p) => (p === param ? id : realId(path, p))),
          label: `${param} ${label}`,
          body: ex ? JSON.stringify(ex) : undefined,
        });
      }
    }
    // Hostile query values, one parameter at a time, and an unknown parameter.
    const queryParams: string[] = (op.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name);
    for (const q of queryParams) {
      for (const [label, qs] of HOSTILE_QUERY) cases.push({ app, method: M, path: `${url}?${qs(q)}`, label: `?${q} ${label}` });
    }
    // A parameter the operation does not take: a few shapes suffice (it is refused or ignored before any use).
    for (const [label, qs] of HOSTILE_QUERY.filter(([l]) => ['%00', 'overlong', 'repeated', 'bracketed object'].includes(l))) {
      cases.push({ app, method: M, path: `${url}?${qs('unknown')}`, label: `?unknown ${label}` });
    }
    if (ex) {
      for (const field of fieldPaths(ex)) {
        // Nested fields (limits.*, settings.*, targets[0].*) pass the same validators as top-level ones: core values.
        for (const [label, value] of field.length > 1 ? HOSTILE_CORE : values) {
          cases.push({ app, method: M, path: url, label: `${pathLabel(field)} = ${label}`, body: stringifyHostile(withField(ex, field, value)) });
        }
      }
      for (const [label, body] of hostileBodies(ex)) cases.push({ app, method: M, path: url, label, body });
      for (const ct of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16',
        'application/json; charset=bogus',
      ]) {
        cases.push({ app, method: M, path: url, label: `content-type ${ct}`, body: JSON.stringify(ex), headers: { 'content-type': ct } });
      }
      cases.push({ app, method: M, path: url, label: 'form body', body: 'name=a&name=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    } else if (M !== 'GET' && M !== 'DELETE') {
      // Operations without a body (revoke) get some anyway.
      cases.push({ app, method: M, path: url, label: 'an unexpected body', body: stringifyHostile({ a: HOSTILE_VALUES[0][1] }) });
      cases.push({ app, method: M, path: url, label: 'an unexpected deep body', body: '['.repeat(10_000) + ']'.repeat(10_000) });
    }
    return cases;
  }

  it('the sweep covers every operation in docs/openapi.json, and each one with a body has a valid example', () => {
    expect(operations.length).toBeGreaterThan(35);
    for (const [method, path] of operations) {
      if (doc.paths[path][method].requestBody) expect([method, path, example(method, path) !== undefined]).toEqual([method, path, true]);
    }
  });

  it('admin API: hostile path ids, queries and bodies on every operation, 0 × 500', async () => {
    const cases = operations.filter(([m]) => m !== 'delete').flatMap(([m, p, app]) => mutationsOf(m, p, app));
    // Deletes with hostile ids only: real ids would remove the objects the other cases name.
    const deletes = operations
      .filter(([m]) => m === 'delete')
      .flatMap(([m, p, app]) => mutationsOf(m, p, app).filter((c) => !c.path.includes(realId(p, 'id')) || c.label.startsWith('tenantId')));
    await run([...cases, ...deletes]);
    expect(findings).toEqual([]);
    expect(sent).toBeGreaterThan(3000);
    expect(classes.get('2xx')).toBeGreaterThan(300);
  });

  it("admin API as the tenant's own admin: its tenant's keys, tokens, routes, usage and audit, 0 × 500", async () => {
    const before = sent;
    // A tenant admin goes through other code (quota checks, tenant scoping).
    const created = await stack.api('POST', `/admin/tenants/${v.tenant}/tokens`, { name: 'va', role: 'admin' });
    v.tenantAdminSecret = created.body.secret;
    const probe = await stack.api('GET', `/admin/tenants/${v.tenant}/keys`, undefined, v.tenantAdminSecret);
    expect([created.status, probe.status, JSON.stringify((await stack.api('GET', `/admin/tenants/${v.tenant}`)).body)]).toEqual([201, 200, expect.any(String)]);
    const mine = (p: string) =>
      p.startsWith('/admin/tenants/{tenantId}/') ||
      p.startsWith('/admin/routes') ||
      p === '/admin/usage' ||
      p === '/admin/audit' ||
      p === '/admin/tenants/{id}/spend';
    const cases = operations
      .filter(([m, p]) => m !== 'delete' && mine(p) && !p.endsWith('/revoke'))
      .flatMap(([m, p, app]) => mutationsOf(m, p, app, HOSTILE_CORE))
      // Path ids and whole bodies are judged before the role matters: the root sweep has them.
      .filter((c) => c.label.includes(' = ') || c.label.startsWith('?'))
      .map((c) => ({ ...c, token: v.tenantAdminSecret }));
    await run(cases);
    expect(findings).toEqual([]);
    expect(sent - before).toBeGreaterThan(500);
    // The token worked: most answers are validation's 400s, some mutations were accepted.
    expect(classes.get('2xx')).toBeGreaterThan(50);
    expect((classes.get('401') ?? 0) + (classes.get('403') ?? 0)).toBeLessThan((sent - before) / 4);
  });

  // ───────────────────────────── data plane ─────────────────────────────

  const user = [{ role: 'user', content: 'hi' }];
  const dataPlane: [string, string, Record<string, unknown>][] = [
    [
      'chat (native)',
      '/v1/chat/completions',
      {
        model: 'gpt-4o-mini',
        messages: user,
        max_tokens: 16,
        temperature: 0.5,
        stream: false,
        user: 'u',
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      },
    ],
    [
      'chat (ollama)',
      '/v1/chat/completions',
      {
        model: 'gpt-oss:20b',
        messages: [{ role: 'system', content: 'be brief' }, ...user],
        max_completion_tokens: 16,
        stream_options: { include_usage: true },
      },
    ],
    [
      'responses (native)',
      '/v1/responses',
      {
        model: 'gpt-4o-mini',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
        instructions: 'be brief',
        max_output_tokens: 16,
        tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }],
      },
    ],
    [
      'responses (translated)',
      '/v1/responses',
      {
        model: 'gpt-oss:20b',
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'hi' }] },
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'c1', output: 'ok' },
        ],
        instructions: 'be brief',
        max_output_tokens: 16,
        tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } }],
        reasoning: { effort: 'low' },
        text: { format: { type: 'text' } },
      },
    ],
    [
      'responses (translated, streamed)',
      '/v1/responses',
      { model: 'gpt-oss:20b', input: 'hi', stream: true, max_output_tokens: 16, tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }] },
    ],
    ['chat (streamed)', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: user, stream: true, stream_options: { include_usage: true } }],
    ['embeddings', '/v1/embeddings', { model: 'text-embedding-3-small', input: ['x'], encoding_format: 'float' }],
    ['responses compact (translated)', '/v1/responses/compact', { model: 'gpt-oss:20b', input: [{ role: 'user', content: 'hi' }], instructions: 'be brief' }],
  ];

  it('data plane: hostile bodies on chat, responses (native and translated) and embeddings, 0 × 500', async () => {
    const before = sent;
    const cases: Case[] = [];
    for (const [name, path, ex] of dataPlane) {
      // A stream repeats its non-streamed twin's validation: the core values suffice there.
      for (const field of fieldPaths(ex, 4)) {
        for (const [label, value] of ex.stream ? HOSTILE_CORE : HOSTILE_VALUES)
          cases.push({
            app: 'gateway',
            method: 'POST',
            path,
            label: `${name}: ${pathLabel(field)} = ${label}`,
            body: stringifyHostile(withField(ex, field, value)),
          });
      }
      for (const [label, body] of hostileBodies(ex)) cases.push({ app: 'gateway', method: 'POST', path, label: `${name}: ${label}`, body });
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/json; charset=bogus']) {
        cases.push({ app: 'gateway', method: 'POST', path, label: `${name}: content-type ${ct}`, body: JSON.stringify(ex), headers: { 'content-type': ct } });
      }
      cases.push({
        app: 'gateway',
        method: 'POST',
        path: `${path}?stream=true&stream=false&model=%00`,
        label: `${name}: hostile query`,
        body: JSON.stringify(ex),
      });
    }
    await run(cases);
    expect(findings).toEqual([]);
    expect(sent - before).toBeGreaterThan(1500);
    // Many mutations are forwarded (the upstream answers them), not all refused by validation.
    expect(classes.get('2xx')).toBeGreaterThan(300);
  });

  it('data plane: hostile model ids and queries on /v1/models, the health endpoints, /metrics and /admin/circuits, 0 × 500', async () => {
    const cases: Case[] = [];
    for (const [label, id] of HOSTILE_IDS) cases.push({ app: 'gateway', method: 'GET', path: `/v1/models/${id}`, label: `model ${label}` });
    for (const path of ['/v1/models', '/v1/models/gpt-4o-mini', '/healthz', '/readyz', '/metrics', '/admin/circuits', '/v1/chat/completions', '/v1/nowhere']) {
      for (const [label, qs] of HOSTILE_QUERY) cases.push({ app: 'gateway', method: 'GET', path: `${path}?${qs('model')}`, label: `?model ${label}` });
    }
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])
      cases.push({ app: 'gateway', method, path: '/v1/chat/completions', label: `method ${method}` });
    await run(cases);
    expect(findings).toEqual([]);
  });

  // ───────────────────────────── headers, written by hand ─────────────────────────────

  const HOSTILE_HEADERS: readonly (readonly [string, [string, string][], 'auth' | 'valid'])[] = [
    ['authorization with control characters', [['authorization', 'Bearer \x01\x1b\x7f']], 'auth'],
    ['authorization with NUL', [['authorization', 'Bearer a\x00b']], 'auth'],
    ['authorization with bytes above 0x7f', [['authorization', 'Bearer \xff\xfe\xc0']], 'auth'],
    ['authorization overlong', [['authorization', `Bearer ${'a'.repeat(16_000)}`]], 'auth'],
    ['authorization Basic', [['authorization', 'Basic Zm9vOmJhcg==']], 'auth'],
    ['authorization without a token', [['authorization', 'Bearer']], 'auth'],
    [
      'authorization twice',
      [
        ['authorization', 'Bearer a'],
        ['authorization', 'Bearer b'],
      ],
      'auth',
    ],
    ['x-request-id overlong', [['x-request-id', 'r'.repeat(16_000)]], 'valid'],
    ['x-request-id with control characters', [['x-request-id', 'r\x01\x1b\x7f']], 'valid'],
    ['x-request-id with bytes above 0x7f', [['x-request-id', '\xff\xfe']], 'valid'],
    [
      'x-request-id twice',
      [
        ['x-request-id', 'a'],
        ['x-request-id', 'b'],
      ],
      'valid',
    ],
    ['x-forwarded-for garbage', [['x-forwarded-for', 'not-an-ip, \x01, ::ffff:1.2.3.4%eth0, [::1]:80']], 'valid'],
    ['x-forwarded-for overlong', [['x-forwarded-for', Array.from({ length: 2000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(',')]], 'valid'],
    ['content-type with control characters', [['content-type', 'application/json\x01']], 'valid'],
    [
      'content-type twice',
      [
        ['content-type', 'application/json'],
        ['content-type', 'text/plain'],
      ],
      'valid',
    ],
    ['content-type charset utf-16', [['content-type', 'application/json; charset=utf-16']], 'valid'],
    ['content-encoding gzip on a plain body', [['content-encoding', 'gzip']], 'valid'],
    ['content-encoding a list', [['content-encoding', 'gzip, br']], 'valid'],
    ['content-encoding overlong', [['content-encoding', 'x'.repeat(4000)]], 'valid'],
    ['accept overlong', [['accept', 'a/b,'.repeat(2000)]], 'valid'],
    ['accept-encoding odd', [['accept-encoding', '\x01;q=NaN']], 'valid'],
    ['host overlong', [['x-original-host', 'h'.repeat(8000)]], 'valid'],
  ];

  it('hostile header values on both apps, 0 × 500, and the failure limiter blocks no one else', async () => {
    const targets: ['admin' | 'gateway', string, string, string][] = [
      ['admin', 'GET', '/admin/tenants', ''],
      ['admin', 'POST', '/admin/tenants', JSON.stringify({ name: 'fuzz-h' })],
      ['admin', 'GET', '/admin/usage?model=x', ''],
      ['gateway', 'POST', '/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: user })],
      ['gateway', 'POST', '/v1/responses', JSON.stringify({ model: 'gpt-oss:20b', input: 'hi' })],
      ['gateway', 'GET', '/v1/models', ''],
      ['gateway', 'GET', '/admin/circuits', ''],
      ['gateway', 'GET', '/healthz', ''],
      ['gateway', 'GET', '/metrics', ''],
    ];
    const tasks = targets.flatMap(([app, method, path, body]) =>
      HOSTILE_HEADERS.map(([label, headers, kind]) => async () => {
        const base = app === 'admin' ? stack.adminUrl : stack.gatewayUrl;
        const token = app === 'admin' || path.startsWith('/admin/') ? TEST_ADMIN_TOKEN : keySecret;
        const all: [string, string][] = [
          ['x-forwarded-for', nextAddress()],
          ['content-type', 'application/json'],
        ];
        if (kind === 'valid') all.push(['authorization', `Bearer ${token}`]);
        const names = new Set(headers.map(([k]) => k));
        const r = await rawRequest(base + path, method, [...all.filter(([k]) => !names.has(k)), ...headers], body);
        sent++;
        judge({ app, method, path, label }, r.status, r.text);
      }),
    );
    await pooled(CONCURRENCY, tasks);
    expect(findings).toEqual([]);
  });

  // ───────────────────────────── real deletes, then: still serving ─────────────────────────────

  it('deletes with real ids, 0 × 500', async () => {
    const cases: Case[] = [
      ['/admin/tenants/{tenantId}/keys/{id}', v.key],
      ['/admin/tenants/{tenantId}/tokens/{id}', v.tenantToken],
      ['/admin/tokens/{id}', v.token],
      ['/admin/routes/{id}', v.route],
      ['/admin/prices/{id}', v.price],
      ['/admin/providers/{id}', v.provider],
      ['/admin/tenants/{id}', v.tenant],
    ].map(([p, id]) => ({ app: 'admin', method: 'DELETE', path: fill(p, (param) => (param === 'tenantId' ? v.tenant : id)), label: 'real id' }));
    for (const c of cases) await send(c);
    // And twice: the second is a 404 or a 409, never a 500.
    for (const c of cases) await send(c);
    expect(findings).toEqual([]);
  });

  it('afterwards both apps still serve normal requests', async () => {
    const chat = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keySecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: user }),
    });
    expect(chat.status).toBe(200);
    const resp = await fetch(`${stack.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keySecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-oss:20b', input: 'hi' }),
    });
    expect(resp.status).toBe(200);
    expect((await stack.api('GET', '/admin/tenants')).status).toBe(200);
    expect((await stack.api('GET', '/admin/usage?groupBy=model')).status).toBe(200);
    expect((await fetch(`${stack.gatewayUrl}/readyz`)).status).toBe(200);

    console.log(`fuzz: ${sent} requests answered`);
  });
});
