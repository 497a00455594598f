// `npm run fake-provider [openai|openrouter|ollama] [port]`: the project's fake upstream (the one the
// tests use) on loopback, so the README walkthrough works with no provider account and no network.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const flavor = process.argv[2] ?? 'openai';
const port = Number(process.argv[3] ?? 9999);
if (!existsSync('dist/test/support/fake-provider.js')) {
  const b = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// dist is CommonJS: its exports arrive on `default` when imported from ESM.
const mod = await import('../dist/test/support/fake-provider.js');
const { FakeProvider } = mod.default ?? mod;
const fake = await FakeProvider.start({ flavor, port });
console.log(`fake ${flavor} provider: ${fake.baseUrl} (any API key; models: ${fake.options.models.join(', ')})`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => fake.close().then(() => process.exit(0)));
