// Compiles apps/, libs/ and test/support (for `npm run fake-provider`) with swc (decorator metadata on, path aliases rewritten): well under a second.
// Data files the code reads next to itself (apps/gateway/src/models/codex-models.json, libs/db/assets: the PGlite
// template) are copied alongside: the Docker image's runtime stage has dist/ and node_modules, not libs/.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
const r = spawnSync(
  process.execPath,
  ['node_modules/@swc/cli/bin/swc.js', 'apps', 'libs', 'test/support', '-d', 'dist', '--ignore', '**/*.spec.ts,**/*.medium-spec.ts', '-q'],
  {
    stdio: 'inherit',
  },
);
if (r.status === 0) {
  cpSync('apps/gateway/src/models/codex-models.json', 'dist/apps/gateway/src/models/codex-models.json');
  cpSync('libs/db/assets', 'dist/libs/db/assets', { recursive: true });
}
process.exit(r.status ?? 1);
