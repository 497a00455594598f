// Regenerates apps/gateway/src/models/codex-models.json from the pinned Codex CLI (node_modules/.bin/codex):
//   - models: its bundled catalog (`codex debug models --bundled`, offline), Codex's own ModelInfo objects;
//   - fallbackBaseInstructions: the system prompt it sends for a model it has no metadata for, captured from one
//     `codex exec` against a recorder on loopback. Generic catalog entries carry it so that listing a model in
//     the gateway's catalog does not change the prompt Codex would have used anyway.
// Usage: node scripts/codex-models.mjs          write the file
//        node scripts/codex-models.mjs --check  exit 1 if the committed file differs from what the binary gives
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CODEX = join(ROOT, 'node_modules', '.bin', 'codex');
const OUT = join(ROOT, 'apps', 'gateway', 'src', 'models', 'codex-models.json');
const PATH = process.env.PATH ?? '/usr/bin:/bin';

function version(home) {
  const r = spawnSync(CODEX, ['--version'], { env: { PATH, HOME: home }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`codex --version: exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim().split(/\s+/).pop();
}

function bundled(home) {
  const r = spawnSync(CODEX, ['debug', 'models', '--bundled'], { env: { PATH, HOME: home }, encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`codex debug models --bundled: exit ${r.status}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  if (!Array.isArray(doc.models) || doc.models.length === 0) throw new Error('no bundled models');
  return doc.models;
}

/** One `codex exec` with an unknown model against a recorder that answers "ok"; returns input[0]'s text. */
async function fallbackInstructions(root) {
  let body;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST') return res.writeHead(404).end();
      body ??= JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const item = { type: 'message', id: 'm1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'ok', annotations: [] }] };
      const usage = { input_tokens: 1, output_tokens: 1, total_tokens: 2, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } };
      const events = [
        { type: 'response.output_item.done', output_index: 0, item },
        { type: 'response.completed', response: { id: 'r1', object: 'response', status: 'completed', output: [item], usage } },
      ];
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join(''));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const home = join(root, 'home');
  const work = join(root, 'work');
  mkdirSync(join(home, '.codex'), { recursive: true });
  mkdirSync(work, { recursive: true });
  writeFileSync(
    join(home, '.codex', 'config.toml'),
    [
      'model = "gateway-unknown-model-probe"',
      'model_provider = "probe"',
      'approval_policy = "never"',
      'sandbox_mode = "danger-full-access"',
      'check_for_update_on_startup = false',
      '[model_providers.probe]',
      'name = "probe"',
      `base_url = "http://127.0.0.1:${server.address().port}/v1"`,
      'env_key = "PROBE_KEY"',
      'wire_api = "responses"',
      'request_max_retries = 0',
      'stream_max_retries = 0',
      '[analytics]',
      'enabled = false',
      '[otel]',
      'exporter = "none"',
      'trace_exporter = "none"',
      'metrics_exporter = "none"',
      '[features]',
      'plugins = false',
      'apps = false',
      '',
    ].join('\n'),
  );
  try {
    const code = await new Promise((resolve, reject) => {
      const child = spawn(CODEX, ['exec', '--skip-git-repo-check', '--color', 'never', '--', 'hi'], {
        cwd: work,
        env: { PATH, HOME: home, PROBE_KEY: 'probe' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('error', reject);
      child.once('close', (c) => (clearTimeout(timer), resolve(c)));
    });
    if (code !== 0 || !body) throw new Error(`codex exec (fallback probe): exit ${code}`);
  } finally {
    server.close();
  }
  const first = body.input?.[0];
  const text = first?.role === 'developer' ? first.content?.[0]?.text : undefined;
  if (typeof text !== 'string' || text.length < 1000) throw new Error(`unexpected first input item: ${JSON.stringify(first).slice(0, 300)}`);
  return text;
}

const root = mkdtempSync(join(tmpdir(), 'codex-models-'));
try {
  const doc = {
    codexVersion: version(root),
    source: 'node scripts/codex-models.mjs: `codex debug models --bundled` and the fallback prompt of the pinned @openai/codex',
    fallbackBaseInstructions: await fallbackInstructions(root),
    models: bundled(root),
  };
  const text = JSON.stringify(doc, null, 1) + '\n';
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUT, 'utf8');
    } catch {
      /* missing counts as different */
    }
    if (current !== text) {
      console.error(`${OUT} differs from what codex ${doc.codexVersion} gives: run node scripts/codex-models.mjs`);
      process.exit(1);
    }
    console.log(`${OUT} matches codex ${doc.codexVersion}`);
  } else {
    writeFileSync(OUT, text);
    console.log(`wrote ${OUT}: ${doc.models.length} models from codex ${doc.codexVersion}`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
