// The layering rule (.dependency-cruiser.cjs) really fails on imports against docs/architecture.md's direction, and
// the real tree has none. Runs the dependency-cruiser CLI (its API is ESM-only, which Jest's CommonJS run can't load).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = join(__dirname, '..');
const bin = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

function cruise(cwd: string, dirs: string[]): Violation[] {
  const r = spawnSync(process.execPath, [bin, ...dirs, '--config', join(root, '.dependency-cruiser.cjs'), '--output-type', 'json'], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const out = JSON.parse(r.stdout) as { summary: { violations: Violation[] } };
  return out.summary.violations;
}

describe('layering (dependency-cruiser)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-layering-'));
    const files: Record<string, string> = {
      'tsconfig.json': JSON.stringify({
        compilerOptions: { baseUrl: './', paths: { '@gw/common': ['libs/common/src'], '@gw/config': ['libs/config/src'], '@gw/db': ['libs/db/src'] } },
      }),
      'libs/common/src/index.ts': "export * from './ok';\nimport { db } from '@gw/db';\nexport const common = db;\n",
      'libs/common/src/ok.ts': 'export const ok = 1;\n',
      'libs/config/src/index.ts': "import type { ok } from '@gw/common';\nexport type Ok = typeof ok;\nexport const config = 1;\n",
      'libs/db/src/index.ts':
        "import { config } from '@gw/config';\nimport { main } from '../../../apps/gateway/src/main';\nexport const db = config + main;\n",
      // index → apps/gateway/src/main → inner → index: a cycle.
      'libs/db/src/inner.ts': "import { db } from './index';\nexport const inner = 1;\nexport const again = () => db;\n",
      'apps/gateway/src/main.ts': "import { inner } from '../../../libs/db/src/inner';\nexport const main = inner;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports imports against the documented direction', () => {
    const found = cruise(dir, ['apps', 'libs']).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
    expect(found).toEqual(
      expect.arrayContaining([
        'lib-common-depends-on: libs/common/src/index.ts → libs/db/src/index.ts',
        'libs-not-to-apps: libs/db/src/index.ts → apps/gateway/src/main.ts',
        'lib-only-through-index: apps/gateway/src/main.ts → libs/db/src/inner.ts',
      ]),
    );
    expect(found.some((f) => f.startsWith('no-circular:'))).toBe(true);
    // An `import type` of @gw/common from config is the documented exception.
    expect(found.filter((f) => f.includes('libs/config/'))).toEqual([]);
  });

  it('finds no violation in the real tree', () => {
    expect(cruise(root, ['apps', 'libs', 'test', 'scripts'])).toEqual([]);
  }, 60_000);
});
