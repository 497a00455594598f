import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually } from './stack';
import { copyPgliteTemplate, freePort } from './test-database';

const ROOT = resolve(__dirname, '../..');

/**
 * A private swc build of apps/ and libs/ in a temp dir (not dist/, which other runs may be rebuilding), with
 * node_modules linked in: for suites that run the gateway as its own OS process. Well under a second.
 * Remove it with `rmSync(dir, { recursive: true })` when done.
 */
export function buildGateway(): string {
  const built = mkdtempSync(join(tmpdir(), 'gw-build-'));
  const r = spawnSync(process.execPath, ['node_modules/@swc/cli/bin/swc.js', 'apps', 'libs', '-d', built, '--ignore', '**/*.spec.ts', '-q'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  // Data the gateway reads next to its code (as scripts/build.mjs copies it).
  cpSync(join(ROOT, 'apps/gateway/src/models/codex-models.json'), join(built, 'apps/gateway/src/models/codex-models.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(built, 'node_modules'), 'dir');
  return built;
}

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once it has exited. */
  exited: Promise<number | null>;
  /** SIGKILL: no shutdown hook, no flush. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function track(child: ChildProcess, url: string): ChildServer {
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
  const server: ChildServer = {
    url,
    child,
    output: () => out,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return server;
}

/**
 * Starts `apps/gateway` of a `buildGateway()` build as its own process on a free loopback port and waits
 * for `/readyz`. `env` is all it gets besides PATH, HOST and GATEWAY_PORT.
 */
export async function spawnGateway(built: string, env: Record<string, string | undefined>, readyMs = 30_000): Promise<ChildServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
    cwd: built,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', GATEWAY_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = track(child, url);
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`the gateway process exited (${child.exitCode})`);
      return (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200;
    },
    readyMs,
    100,
    'the gateway process to be ready',
  ).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\ngateway output:\n${server.output()}`);
  });
  return server;
}

/**
 * PGlite served over the Postgres wire by its own process (pglite-socket's server), so that a test can kill a
 * gateway without touching its database, as with a real PostgreSQL. Data in a fresh temp dir.
 */
export async function startPgliteProcess(): Promise<ChildServer & { dataDir: string; dbUrl: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-pglite-'));
  // Starts from the run's migrated template when there is one: an empty directory costs an initdb.
  copyPgliteTemplate(dataDir);
  const port = await freePort();
  const script = join(ROOT, 'node_modules/@electric-sql/pglite-socket/dist/scripts/server.js');
  const child = spawn(process.execPath, [script, `--db=${join(dataDir, 'pg')}`, `--port=${port}`, '--host=127.0.0.1', '--max-connections=100'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = track(child, `postgres://postgres@127.0.0.1:${port}/postgres`);
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`pglite-server exited (${child.exitCode}):\n${server.output()}`);
    return server.output().includes('listening');
  }, 30_000, 50, 'pglite-server to listen');
  const stop = server.stop;
  return {
    ...server,
    dataDir,
    dbUrl: server.url,
    async stop(graceMs?: number) {
      await stop(graceMs);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
