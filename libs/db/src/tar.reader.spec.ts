import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { entryPath, extractTar, parseTarHeader, TarError } from './tar.reader';

interface Entry {
  name: string;
  body?: string | Buffer;
  type?: string;
  mode?: number;
  prefix?: string;
}

/** A ustar header as tinytar (PGlite's dumpDataDir) writes one. */
function header(e: Entry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number, len: number) => h.write(text, at, len, 'latin1');
  const oct = (n: number, at: number, len: number) => put(`${n.toString(8).padStart(len - 1, '0')}\0`, at, len);
  put(e.name, 0, 100);
  oct(e.mode ?? (e.type === '5' ? 0o750 : 0o600), 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  oct(size, 124, 12);
  oct(1_700_000_000, 136, 12);
  h[156] = (e.type ?? '0').charCodeAt(0);
  put('ustar\u000000', 257, 8);
  if (e.prefix) put(e.prefix, 345, 155);
  put('        ', 148, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

function tar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    parts.push(header(e, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The archive in chunks of `size` bytes: entries straddle chunk boundaries as gunzip's output does. */
async function* chunks(buf: Buffer, size = buf.length): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

let dest: string;
let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'gw-tar-'));
  dest = join(scratch, 'out');
  mkdirSync(dest);
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

const tree = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => p.split('\\').join('/'))
    .sort();

describe('extractTar', () => {
  const big = Buffer.alloc(70_000, 'x');
  big.write('start');
  big.write('end', big.length - 3);
  const archive = tar([
    { name: '/pg_wal', type: '5' },
    { name: '/pg_wal/000000010000000000000001', body: big },
    { name: '/PG_VERSION', body: '18\n' },
    { name: '/base/1/empty', body: '' },
    { name: '/global/conf', body: 'x=1', mode: 0o640 },
  ]);

  it.each([1, 7, 511, 512, 513, 16_384, archive.length])('unpacks files and directories, leading "/" stripped, in %i-byte chunks', async (size) => {
    const stats = await extractTar(chunks(archive, size), dest);
    expect(stats).toEqual({ files: 4, directories: 1, bytes: big.length + 3 + 3 });
    expect(tree(dest)).toEqual(['PG_VERSION', 'base', 'base/1', 'base/1/empty', 'global', 'global/conf', 'pg_wal', 'pg_wal/000000010000000000000001']);
    expect(readFileSync(join(dest, 'pg_wal/000000010000000000000001')).equals(big)).toBe(true);
    expect(readFileSync(join(dest, 'PG_VERSION'), 'utf8')).toBe('18\n');
    expect(readFileSync(join(dest, 'base/1/empty'))).toHaveLength(0);
    expect(statSync(join(dest, 'global/conf')).mode & 0o777).toBe(0o640);
    expect(statSync(join(dest, 'PG_VERSION')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dest, 'pg_wal')).mode & 0o777).toBe(0o750);
  });

  it('unpacks what the tar CLI writes in ustar format', async () => {
    const src = join(scratch, 'src');
    mkdirSync(join(src, 'base', '1'), { recursive: true });
    writeFileSync(join(src, 'PG_VERSION'), '18\n');
    writeFileSync(join(src, 'base', '1', '1259'), Buffer.alloc(8192, 7));
    const file = join(scratch, 'cli.tar.gz');
    const r = spawnSync('tar', ['--format=ustar', '-czf', file, '-C', src, 'PG_VERSION', 'base'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const stats = await extractTar(chunks(gunzipSync(readFileSync(file)), 1000), dest);
    expect(stats).toEqual({ files: 2, directories: 2, bytes: 3 + 8192 });
    expect(readFileSync(join(dest, 'base', '1', '1259')).equals(Buffer.alloc(8192, 7))).toBe(true);
  });

  it.each(['../evil', '/../evil', 'a/../../evil', 'base/../../evil'])('refuses %s and writes nothing outside', async (name) => {
    await expect(
      extractTar(
        chunks(
          tar([
            { name: '/ok', body: 'ok' },
            { name, body: 'pwned' },
          ]),
        ),
        dest,
      ),
    ).rejects.toThrow(new TarError(`${name}: a path with ".." is refused`));
    expect(existsSync(join(scratch, 'evil'))).toBe(false);
    expect(tree(scratch)).toEqual(['out', 'out/ok']);
  });

  it('refuses a truncated archive: mid-file, mid-header, mid-padding, and with no end-of-archive marker', async () => {
    const whole = tar([
      { name: '/a', body: Buffer.alloc(1000, 1) },
      { name: '/b', body: 'b' },
    ]);
    const cases: [number, RegExp][] = [
      [512 + 600, /truncated archive: \/a ends 400 bytes short/],
      [512 + 1000 + 10, /truncated archive: \/a ends before its padding/],
      [1024 + 512 + 100, /truncated archive: a header of 100 bytes/],
      [whole.length - 1024, /truncated archive: no end-of-archive marker/],
    ];
    for (const [at, message] of cases) {
      const out = mkdtempSync(join(scratch, 'cut-'));
      await expect(extractTar(chunks(whole.subarray(0, at), 333), out)).rejects.toThrow(message);
    }
  });

  it('refuses what the template generator never writes: links, pax and GNU long-name records, the prefix field, a corrupt header', async () => {
    const refused = async (entries: Entry[]) =>
      extractTar(chunks(tar(entries)), mkdtempSync(join(scratch, 'r-'))).then(
        () => 'accepted',
        (e: Error) => e.message,
      );
    expect(await refused([{ name: '/link', type: '2' }])).toBe('/link: entry type "2" is not supported (only files and directories)');
    expect(await refused([{ name: '/hard', type: '1' }])).toBe('/hard: entry type "1" is not supported (only files and directories)');
    expect(await refused([{ name: 'PaxHeader', type: 'x', body: '30 path=/a/very/long/name\n' }])).toBe('PaxHeader: pax extended headers are not supported');
    expect(await refused([{ name: '././@LongLink', type: 'L', body: '/a/very/long/name' }])).toBe('GNU long-name records are not supported');
    expect(await refused([{ name: 'file', prefix: 'base/1', body: 'x' }])).toBe('file: names in the ustar prefix field are not supported');
    const corrupt = tar([{ name: '/a', body: 'a' }]);
    corrupt[0] = 'b'.charCodeAt(0);
    await expect(extractTar(chunks(corrupt), dest)).rejects.toThrow(/header checksum mismatch/);
    const trailing = Buffer.concat([tar([{ name: '/a', body: 'a' }]), Buffer.from('junk')]);
    await expect(extractTar(chunks(trailing), mkdtempSync(join(scratch, 't-')))).rejects.toThrow('data after the end-of-archive marker');
  });

  it('refuses an entry twice (files are created, never overwritten)', async () => {
    await expect(
      extractTar(
        chunks(
          tar([
            { name: '/a', body: '1' },
            { name: '/a', body: '2' },
          ]),
        ),
        dest,
      ),
    ).rejects.toThrow(/EEXIST/);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('1');
  });
});

describe('parseTarHeader and entryPath', () => {
  it('an all-zero block is the end-of-archive marker; a block of the wrong size is refused', () => {
    expect(parseTarHeader(Buffer.alloc(512))).toBeUndefined();
    expect(() => parseTarHeader(Buffer.alloc(100))).toThrow('a header is 512 bytes, got 100');
  });

  it('reads name, mode, size and type', () => {
    expect(parseTarHeader(header({ name: '/base/1/1259', mode: 0o640 }, 8192))).toEqual({ name: '/base/1/1259', mode: 0o640, size: 8192, type: 'file' });
    expect(parseTarHeader(header({ name: '/base', type: '5' }, 0))).toEqual({ name: '/base', mode: 0o750, size: 0, type: 'directory' });
  });

  it('keeps every path under the destination', () => {
    expect(entryPath('/d', '/base/1')).toBe('/d/base/1');
    expect(entryPath('/d', './a//b/')).toBe('/d/a/b');
    expect(entryPath('/d', '/')).toBe('/d');
    expect(() => entryPath('/d', 'a/../b')).toThrow(TarError);
  });
});
