import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeProvider, Stack, runCodexExec, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(120_000);

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

function between(start: string, end: string): string {
  const a = README.indexOf(start);
  const b = README.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README lacks ${start} … ${end}`);
  return README.slice(a + start.length, b).replace(/^```\w*\n?/gm, '').trim();
}

function runBash(script: string, timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-e', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/**
 * The README's walkthrough, word for word, against the built all-in-one app on the README's ports
 * (8080/8081) and the fake provider on 9999, on an empty data directory.
 */
describe('README walkthrough', () => {
  let app: ChildProcess;
  let fake: FakeProvider;
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-readme-'));

  beforeAll(async () => {
    expect(spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: join(__dirname, '..') }).status).toBe(0);
    fake = await FakeProvider.start({ flavor: 'openai', port: 9999 });
    app = spawn(process.execPath, ['dist/apps/all-in-one/src/main.js'], {
      cwd: join(__dirname, '..'),
      env: { PATH: process.env.PATH, ADMIN_TOKEN: 'change-me-to-a-long-random-secret', DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    await waitFor('http://localhost:8080/readyz', 30_000);
    await waitFor('http://localhost:8081/readyz', 30_000);
  });

  afterAll(async () => {
    if (app && app.exitCode === null) {
      const exited = new Promise((r) => app.once('exit', r));
      app.kill('SIGTERM');
      await exited;
    }
    await fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs word for word: completion, stream and usage', async () => {
    const script = between('<!-- walkthrough:start -->', '<!-- walkthrough:end -->');
    // Async: the fake provider lives in this process, so a blocking spawnSync would deadlock it.
    const r = await runBash(script, 60_000);
    if (r.status !== 0) console.error(r.stdout, r.stderr);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Hello from fake-openai (gpt-4o-mini)');
    expect(r.stdout).toContain('data: [DONE]');
    const usage = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(usage).toMatchObject({ model: 'gpt-4o-mini', requests: 2, errors: 0 });
    expect(usage.costUsd).toBeGreaterThan(0);
    // the provider got the walkthrough's credential, not the tenant key
    expect(fake.requestsTo('/chat/completions')[0].headers.authorization).toBe('Bearer sk-your-openai-key');
  });
});

/** The README's ~/.codex/config.toml and its profiles, with only the base URL pointed at a test gateway. */
describe('README Codex config', () => {
  let stack: Stack;
  let router: FakeProvider;
  let ollama: FakeProvider;
  let secret: string;

  beforeAll(async () => {
    router = await FakeProvider.start({ flavor: 'openrouter' });
    ollama = await FakeProvider.start({ flavor: 'ollama' });
    stack = await startStack();
    const t = await seedTenant(stack, { provider: { kind: 'openrouter', baseUrl: router.baseUrl, credential: 'sk-or' }, patterns: ['*/*'] });
    secret = t.secret;
    const ol = await stack.api('POST', '/admin/providers', { name: 'ollama', kind: 'ollama', baseUrl: ollama.baseUrl });
    await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-oss*', targets: [{ providerId: ol.body.id }] });
  });
  afterAll(async () => {
    await stack?.close();
    await router?.close();
    await ollama?.close();
  });

  /** The README's files by name (from each block's first-line comment), base URL pointed at the test gateway. */
  function readmeCodexFiles(): Record<string, string> {
    const section = README.slice(README.indexOf('<!-- codex-config:start -->'), README.indexOf('<!-- codex-config:end -->'));
    const files: Record<string, string> = {};
    for (const m of section.matchAll(/```toml\n# ~\/\.codex\/(\S+)\n([\s\S]*?)```/g)) files[m[1]] = m[2];
    expect(Object.keys(files).sort()).toEqual(['claude.config.toml', 'config.toml', 'gpt4o-mini.config.toml', 'oss.config.toml']);
    files['config.toml'] = files['config.toml']
      .replace('base_url = "http://localhost:8080/v1"', `base_url = "${stack.baseURL}"`)
      .replace('model_catalog_url = "http://localhost:8080/v1/models"', `model_catalog_url = "${stack.baseURL}/models"`);
    expect(files['config.toml']).toContain(stack.baseURL);
    return files;
  }

  /** What a test machine adds on top of the README's config: offline, no prompts, no retries. Root keys go first. */
  function withTestSettings(config: string): string {
    return [
      'approval_policy = "never"',
      'sandbox_mode = "danger-full-access"',
      'check_for_update_on_startup = false',
      config,
      '[otel]',
      'exporter = "none"',
      'trace_exporter = "none"',
      'metrics_exporter = "none"',
      '[analytics]',
      'enabled = false',
      '[features]',
      'plugins = false',
    ].join('\n');
  }

  it.each([
    ['claude', 'anthropic/claude-3.5-sonnet', () => router],
    ['gpt4o-mini', 'openai/gpt-4o-mini', () => router],
    ['oss', 'gpt-oss:20b', () => ollama],
  ])('codex --profile %s reaches %s through the gateway', async (profile, model, fakeOf) => {
    const fake = fakeOf();
    fake.reset();
    fake.script({ text: `answer via ${profile}` });
    const files = readmeCodexFiles();
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: secret,
      model,
      prompt: 'hello',
      configToml: withTestSettings(files['config.toml']),
      codexHomeFiles: { [`${profile}.config.toml`]: files[`${profile}.config.toml`] },
      envKey: 'TEAM_GATEWAY_KEY',
      args: ['--profile', profile],
      timeoutMs: 60_000,
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`answer via ${profile}`);
    expect(fake.requestsTo('/chat/completions')[0].body.model).toBe(model);
  });
});
