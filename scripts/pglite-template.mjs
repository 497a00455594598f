// `npm run pglite-template`: writes libs/db/assets/pglite-template.tar.gz, the data directory initdb makes with the
// installed @electric-sql/pglite, and pglite-template.json (that version, PG_VERSION, the tarball's sha256).
// The embedded database's first start unpacks it instead of running initdb, whose WASM memory peaks at ~700 MB
// (libs/db/src/pglite-template.ts). initdb's output is the same for a given PGlite version: run this after a bump.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const require = createRequire(import.meta.url);
const { PGlite } = require('@electric-sql/pglite');
const pkg = JSON.parse(readFileSync(join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json'), 'utf8'));
if (pkg.name !== '@electric-sql/pglite') throw new Error(`found ${pkg.name} where @electric-sql/pglite's package.json was expected`);

const out = join(import.meta.dirname, '..', 'libs', 'db', 'assets');
// In memory (no dataDir): initdb runs, and the dump is its output.
const db = await PGlite.create();
const blob = await db.dumpDataDir('gzip');
await db.close();
const gz = Buffer.from(await blob.arrayBuffer());
const pgVersion = pgVersionOf(gz);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'pglite-template.tar.gz'), gz);
const meta = { pglite: pkg.version, pgVersion, sha256: createHash('sha256').update(gz).digest('hex') };
writeFileSync(join(out, 'pglite-template.json'), `${JSON.stringify(meta, null, 2)}\n`);
console.log(`libs/db/assets/pglite-template.tar.gz: ${gz.length} bytes, PGlite ${meta.pglite}, PostgreSQL ${pgVersion}, sha256 ${meta.sha256}`);

/** PG_VERSION's content, read from the tarball itself (what the template holds, not what we hope it holds). */
function pgVersionOf(tgz) {
  const tar = gunzipSync(tgz);
  for (let off = 0; off + 512 <= tar.length;) {
    const name = tar.toString('latin1', off, off + 100).replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(
      tar
        .toString('latin1', off + 124, off + 136)
        .replace(/\0.*$/s, '')
        .trim() || '0',
      8,
    );
    if (name.replace(/^\/+/, '') === 'PG_VERSION') return tar.toString('utf8', off + 512, off + 512 + size).trim();
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('the dump has no PG_VERSION');
}
