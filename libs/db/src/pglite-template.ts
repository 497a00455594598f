import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extractTar, TarStats } from './tar.reader';

/**
 * The PGlite template: the data directory initdb makes with the pinned @electric-sql/pglite, as a tar.gz
 * (libs/db/assets, made by `npm run pglite-template`). A new embedded database unpacks it instead of running
 * initdb, whose WASM memory peaks at ~700 MB and is never given back (WASM memory does not shrink); unpacking
 * costs a few MB. initdb's output depends only on the PGlite build, so the template is used only for the version
 * it was made with, and only if its sha256 matches; otherwise initdb runs as before.
 */
export interface PgliteTemplateMeta {
  /** The @electric-sql/pglite version that made it. */
  pglite: string;
  /** Its PG_VERSION (PostgreSQL's major version). */
  pgVersion: string;
  /** Of the tar.gz. */
  sha256: string;
}

export type PgliteTemplate = { ok: true; file: string; meta: PgliteTemplateMeta } | { ok: false; reason: string };

/** libs/db/assets from libs/db/src (ts-jest), dist/libs/db/assets from dist/libs/db/src (scripts/build.mjs copies it). */
export const PGLITE_TEMPLATE_ASSETS = resolve(__dirname, '..', 'assets');
export const PGLITE_TEMPLATE_REFRESH = 'npm run pglite-template';

/** The installed @electric-sql/pglite's version (its package.json: not in its exports map, so found from its entry). */
export function installedPgliteVersion(): string {
  let dir = dirname(require.resolve('@electric-sql/pglite'));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("@electric-sql/pglite's package.json was not found");
    dir = up;
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether the template in `assets` may be used with PGlite `installed`, and if not, why. */
export async function checkPgliteTemplate(assets = PGLITE_TEMPLATE_ASSETS, installed = installedPgliteVersion()): Promise<PgliteTemplate> {
  const file = join(assets, 'pglite-template.tar.gz');
  const json = join(assets, 'pglite-template.json');
  if (!existsSync(file) || !existsSync(json)) return { ok: false, reason: `no PGlite template at ${file}` };
  let meta: PgliteTemplateMeta;
  try {
    meta = JSON.parse(readFileSync(json, 'utf8')) as PgliteTemplateMeta;
  } catch (e) {
    return { ok: false, reason: `${json} is not JSON: ${(e as Error).message}` };
  }
  if (meta.pglite !== installed) return { ok: false, reason: `the PGlite template was made by PGlite ${meta.pglite}, and ${installed} is installed` };
  const sha256 = await sha256File(file);
  if (sha256 !== meta.sha256) return { ok: false, reason: `${file}'s sha256 is ${sha256}, not ${meta.sha256} as ${basename(json)} says` };
  return { ok: true, file, meta };
}

let checked: Promise<PgliteTemplate> | undefined;
/** checkPgliteTemplate() once per process: the embedded database's entry point and its boot both ask. */
export function pgliteTemplate(): Promise<PgliteTemplate> {
  return (checked ??= checkPgliteTemplate().catch((e: unknown) => ({ ok: false, reason: (e as Error).message }) as const));
}

/**
 * Unpacks `file` as the data directory `dir` (which must not exist, or be empty). It is unpacked next to it
 * (`${dir}.init-<pid>`) and renamed into place: a crash halfway never leaves a directory that looks initialised
 * (PG_VERSION is what embeddedPostgresExists looks for). The caller holds the data directory's lock, so any
 * `${dir}.init-*` left by an earlier crash is garbage and removed.
 */
export async function unpackPgliteTemplate(file: string, dir: string): Promise<TarStats> {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.init-`;
  for (const name of readdirSync(parent)) if (name.startsWith(prefix)) rmSync(join(parent, name), { recursive: true, force: true });
  const tmp = join(parent, `${prefix}${process.pid}`);
  mkdirSync(tmp, { mode: 0o700 });
  try {
    let stats: TarStats | undefined;
    await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
      stats = await extractTar(source, tmp);
    });
    if (!existsSync(join(tmp, 'PG_VERSION'))) throw new Error(`${file} holds no PG_VERSION: not a data directory`);
    // An empty directory (made by an earlier start that stopped before initdb) gives way; one with files does not.
    if (existsSync(dir)) rmdirSync(dir);
    renameSync(tmp, dir);
    return stats!;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
