// The bench's tenant, key, providers and routes, made through the admin API, with every feature on: limits and
// budgets set on the tenant and the key (high enough never to refuse), priced models, metering and metrics.
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

export async function waitReady(url, tries = 600) {
  for (let i = 0; i < tries; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

export function adminClient(adminOrigin) {
  const call = async (method, path, body) => {
    const r = await fetch(`${adminOrigin}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return { post: (path, body) => call('POST', path, body), get: (path) => call('GET', path) };
}

/**
 * Routes: `gpt-4o-mini` (small chat), `stream-model` (20-chunk streams), `codex-pass` (Codex-shaped turns to an
 * OpenAI-kind provider, which takes /v1/responses natively: pass-through) and `codex-chat` (the same turns to an
 * OpenRouter-kind provider, chat completions only: translated both ways). Returns the virtual key's secret.
 */
export async function configure(adminOrigin, upstreams) {
  const api = adminClient(adminOrigin);
  const limits = {
    requestsPerMinute: 10_000_000,
    tokensPerMinute: 10_000_000_000,
    concurrentRequests: 10_000,
    dailyBudgetUsd: 1_000_000,
    monthlyBudgetUsd: 10_000_000,
  };
  const tenant = await api.post('/tenants', { name: 'bench', limits });
  const key = await api.post(`/tenants/${tenant.id}/keys`, { name: 'bench', limits });
  const provider = (name, kind, baseUrl) => api.post('/providers', { name, kind, baseUrl, credential: 'sk-bench' });
  const small = await provider('fake', 'openai', upstreams.small);
  const stream = await provider('fake-stream', 'openai', upstreams.stream);
  const codex = await provider('fake-codex', 'openai', upstreams.codexResponses);
  const chat = await provider('fake-codex-chat', 'openrouter', upstreams.codexChat);
  await api.post('/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId: small.id }] });
  await api.post('/routes', { modelPattern: 'stream-model', targets: [{ providerId: stream.id, model: 'gpt-4o-mini' }] });
  await api.post('/routes', { modelPattern: 'codex-pass', targets: [{ providerId: codex.id, model: 'gpt-4o-mini' }] });
  await api.post('/routes', { modelPattern: 'codex-chat', targets: [{ providerId: chat.id, model: 'openai/gpt-4o-mini' }] });
  return key.secret;
}

/** Requests in the ledger (usage_records), all tenants. */
export async function ledgerRequests(adminOrigin) {
  const r = await adminClient(adminOrigin).get('/usage?groupBy=model');
  return r.data.reduce((s, row) => s + Number(row.requests ?? 0), 0);
}
